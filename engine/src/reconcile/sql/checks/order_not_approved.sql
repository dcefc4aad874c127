-- needs: orders toss
-- description: The shop marked the order paid, but Toss has no approval for it.
SELECT
    o.business_date,
    o.order_id,
    t.payment_key,
    CAST(NULL AS VARCHAR) AS transaction_key,
    amount_text(o.amount) AS expected,
    CAST(NULL AS VARCHAR) AS actual,
    concat('order ', o.order_id, ' is ', o.status, ' in the shop (', amount_text(o.amount),
           ') but Toss has no approval for it') AS message
FROM orders o
CROSS JOIN period p
LEFT JOIN toss_orders t ON t.order_id = o.order_id
WHERE o.business_date BETWEEN p.from_date AND p.to_date
  AND o.status IN ('paid', 'partially_cancelled')
  AND (t.order_id IS NULL OR t.approvals = 0)
