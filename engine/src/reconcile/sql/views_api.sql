-- The API's transactions as money movements. DONE rows approve, CANCELED and
-- PARTIAL_CANCELED rows cancel (with a positive amount); rows that move no money (a virtual
-- account issued, WAITING_FOR_DEPOSIT with amount 0; READY, ABORTED, EXPIRED) are left out, and
-- so is the cancel of a virtual account that was issued and never paid, which Toss lists as a
-- CANCELED row with the full amount although no money ever moved.
CREATE VIEW api_events AS
SELECT
    'api' AS source,
    t.transaction_date AS business_date,
    t.transaction_key,
    t.payment_key,
    t.order_id,
    t.method,
    coalesce(t.currency, 'KRW') AS currency,
    CASE WHEN t.status IN ('CANCELED', 'PARTIAL_CANCELED') THEN 'cancel' ELSE 'approval' END AS event,
    CAST(t.amount AS DECIMAL(22, 4)) AS amount
FROM transactions t
LEFT JOIN (
    SELECT payment_key,
           max(CASE WHEN status = 'DONE' THEN 1 ELSE 0 END) AS was_paid,
           max(CASE WHEN status = 'WAITING_FOR_DEPOSIT' THEN 1 ELSE 0 END) AS was_issued
    FROM transactions
    GROUP BY payment_key
) history ON history.payment_key = t.payment_key
WHERE t.status IN ('DONE', 'CANCELED', 'PARTIAL_CANCELED')
  AND t.amount <> 0
  AND NOT (t.status <> 'DONE' AND history.was_issued = 1 AND history.was_paid = 0)
