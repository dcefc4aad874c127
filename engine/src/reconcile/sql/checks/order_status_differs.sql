-- needs: orders toss
-- description: The order's status in the shop (paid, partially or wholly cancelled) is not its status at Toss.
SELECT
    o.business_date,
    o.order_id,
    t.payment_key,
    t.transaction_key,
    o.status AS expected,
    t.status AS actual,
    concat('order ', o.order_id, ' is ', o.status, ' in the shop but ', t.status,
           ' at Toss (approved ', amount_text(t.approved), ', cancelled ',
           amount_text(t.cancelled), ')') AS message
FROM orders o
CROSS JOIN period p
JOIN toss_orders t ON t.order_id = o.order_id
WHERE o.business_date BETWEEN p.from_date AND p.to_date
  AND t.approvals > 0
  AND o.status <> t.status
