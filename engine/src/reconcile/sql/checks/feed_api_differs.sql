-- needs: feed transactions
-- description: The file feed and the API both have a record but disagree on its amount, count or order.
SELECT
    f.business_date,
    f.order_id,
    f.payment_key,
    a.transaction_key,
    amount_text(f.amount) AS expected,
    amount_text(a.amount) AS actual,
    concat(f.event, ' of ', f.payment_key, ': the file feed says ', amount_text(f.amount),
           ' in ', CAST(f.records AS VARCHAR), ' record(s) for order ', f.order_id,
           ', the API ', amount_text(a.amount), ' in ', CAST(a.records AS VARCHAR),
           ' for order ', a.order_id) AS message
FROM feed_by_payment f
CROSS JOIN period p
JOIN api_by_payment a
    ON a.event = f.event AND a.payment_key = f.payment_key AND a.business_date = f.business_date
WHERE f.business_date BETWEEN p.from_date AND p.to_date
  AND (f.amount <> a.amount OR f.records <> a.records OR f.order_id <> a.order_id)
