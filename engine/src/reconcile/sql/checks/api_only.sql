-- needs: feed transactions
-- description: The API's transactions have a record (by kind, payment key and day) that the file feed does not.
SELECT
    a.business_date,
    a.order_id,
    a.payment_key,
    a.transaction_key,
    CAST(NULL AS VARCHAR) AS expected,
    amount_text(a.amount) AS actual,
    concat(a.event, ' of ', a.payment_key, ' (order ', a.order_id, ', ', amount_text(a.amount),
           ') is in the API''s transactions but not in the file feed') AS message
FROM api_by_payment a
CROSS JOIN period p
LEFT JOIN feed_by_payment f
    ON f.event = a.event AND f.payment_key = a.payment_key AND f.business_date = a.business_date
WHERE a.business_date BETWEEN p.from_date AND p.to_date
  AND f.payment_key IS NULL
