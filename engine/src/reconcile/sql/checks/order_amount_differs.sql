-- needs: orders toss
-- description: The shop and Toss agree on the order's status but not on its amount paid or cancelled.
SELECT
    d.business_date,
    d.order_id,
    d.payment_key,
    d.transaction_key,
    CASE WHEN d.paid_differs THEN amount_text(d.amount) ELSE amount_text(d.cancelled_amount) END AS expected,
    CASE WHEN d.paid_differs THEN amount_text(d.approved) ELSE amount_text(d.cancelled) END AS actual,
    CASE
        WHEN d.paid_differs THEN concat('order ', d.order_id, ' was paid ', amount_text(d.amount),
                                        ' in the shop but Toss approved ', amount_text(d.approved))
        ELSE concat('order ', d.order_id, ' had ', amount_text(d.cancelled_amount),
                    ' cancelled in the shop but Toss cancelled ', amount_text(d.cancelled))
    END AS message
FROM (
    SELECT
        o.business_date,
        o.order_id,
        o.amount,
        o.cancelled_amount,
        t.payment_key,
        t.transaction_key,
        t.approved,
        t.cancelled,
        abs(o.amount - t.approved) > tolerance(t.currency, r.amount_tolerance) AS paid_differs,
        o.cancelled_amount IS NOT NULL
            AND abs(o.cancelled_amount - t.cancelled) > tolerance(t.currency, r.amount_tolerance)
            AS cancelled_differs
    FROM orders o
    JOIN toss_orders t ON t.order_id = o.order_id
    CROSS JOIN rules r
    WHERE t.approvals > 0 AND o.status = t.status
) d
CROSS JOIN period p
WHERE d.business_date BETWEEN p.from_date AND p.to_date
  AND (d.paid_differs OR d.cancelled_differs)
