-- needs: transactions settlements
-- description: A settlement row names a transaction the API's transactions do not have.
SELECT
    s.sold_date AS business_date,
    s.order_id,
    s.payment_key,
    s.transaction_key,
    CAST(NULL AS VARCHAR) AS expected,
    amount_text(s.amount) AS actual,
    concat('settlement of ', s.transaction_key, ' sold ', CAST(s.sold_date AS VARCHAR), ' (',
           amount_text(s.amount), ') has no transaction') AS message
FROM settlements s
CROSS JOIN period p
LEFT JOIN (SELECT DISTINCT transaction_key FROM transactions) t
    ON t.transaction_key = s.transaction_key
WHERE s.sold_date BETWEEN p.from_date AND p.to_date
  AND t.transaction_key IS NULL
