-- needs: feed transactions
-- description: The file feed has a record (by kind, TID and day) that the API's transactions do not.
SELECT
    f.business_date,
    f.order_id,
    f.payment_key,
    CAST(NULL AS VARCHAR) AS transaction_key,
    amount_text(f.amount) AS expected,
    CAST(NULL AS VARCHAR) AS actual,
    concat(f.event, ' of ', f.payment_key, ' (order ', f.order_id, ', ', amount_text(f.amount),
           ') is in the file feed but not in the API''s transactions') AS message
FROM feed_by_payment f
CROSS JOIN period p
LEFT JOIN api_by_payment a
    ON a.event = f.event AND a.payment_key = f.payment_key AND a.business_date = f.business_date
WHERE f.business_date BETWEEN p.from_date AND p.to_date
  AND a.payment_key IS NULL
