-- needs: orders toss
-- description: Toss approved a payment (not cancelled since) for an order the shop does not have.
SELECT
    t.approved_date AS business_date,
    t.order_id,
    t.payment_key,
    t.transaction_key,
    CAST(NULL AS VARCHAR) AS expected,
    amount_text(t.approved - t.cancelled) AS actual,
    concat('Toss approved ', amount_text(t.approved), ' for order ', t.order_id, ' (',
           t.status, '), which the shop does not have') AS message
FROM toss_orders t
CROSS JOIN period p
LEFT JOIN orders o ON o.order_id = t.order_id
WHERE t.approvals > 0
  AND t.status <> 'cancelled'
  AND t.approved_date BETWEEN p.from_date AND p.to_date
  AND o.order_id IS NULL
