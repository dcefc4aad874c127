-- needs: settlements payouts
-- description: What reached the bank on a payout day is not the total the settlements promise for it.
SELECT
    coalesce(promised.day, received.day) AS business_date,
    CAST(NULL AS VARCHAR) AS order_id,
    CAST(NULL AS VARCHAR) AS payment_key,
    CAST(NULL AS VARCHAR) AS transaction_key,
    amount_text(coalesce(promised.amount, 0)) AS expected,
    amount_text(coalesce(received.amount, 0)) AS actual,
    concat('payouts of ', CAST(coalesce(promised.day, received.day) AS VARCHAR), ': settlements promise ',
           amount_text(coalesce(promised.amount, 0)), ', the bank received ',
           amount_text(coalesce(received.amount, 0))) AS message
FROM (
    SELECT paid_out_date AS day, sum(pay_out_amount) AS amount
    FROM settlements
    WHERE paid_out_date IS NOT NULL
    GROUP BY paid_out_date
) promised
FULL OUTER JOIN (
    SELECT paid_out_date AS day, sum(amount) AS amount
    FROM payouts
    GROUP BY paid_out_date
) received ON received.day = promised.day
CROSS JOIN period p
WHERE coalesce(promised.day, received.day) BETWEEN p.from_date AND p.to_date
  AND coalesce(promised.amount, 0) <> coalesce(received.amount, 0)
