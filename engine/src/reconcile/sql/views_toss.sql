-- Toss's side of each order: what was approved and cancelled, and the status that follows.
CREATE TABLE toss_orders AS
SELECT
    order_id,
    payment_key,
    transaction_key,
    currency,
    approved_date,
    approvals,
    approved,
    cancelled,
    CASE
        WHEN approvals = 0 THEN 'none'
        WHEN cancelled = 0 THEN 'paid'
        WHEN cancelled >= approved THEN 'cancelled'
        ELSE 'partially_cancelled'
    END AS status
FROM (
    SELECT
        order_id,
        min(payment_key) AS payment_key,
        min(CASE WHEN event = 'approval' THEN transaction_key END) AS transaction_key,
        min(currency) AS currency,
        min(CASE WHEN event = 'approval' THEN business_date END) AS approved_date,
        count(CASE WHEN event = 'approval' THEN 1 END) AS approvals,
        coalesce(sum(CASE WHEN event = 'approval' THEN amount END), 0) AS approved,
        coalesce(sum(CASE WHEN event = 'cancel' THEN amount END), 0) AS cancelled
    FROM toss_events
    GROUP BY order_id
) per_order
