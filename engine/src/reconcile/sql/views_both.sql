-- The file feed and the API side by side: one row per kind of movement, payment and day.
CREATE TABLE feed_by_payment AS
SELECT event, payment_key, business_date, min(order_id) AS order_id, count(*) AS records,
       sum(amount) AS amount, min(transaction_key) AS transaction_key
FROM feed_events
GROUP BY event, payment_key, business_date;

CREATE TABLE api_by_payment AS
SELECT event, payment_key, business_date, min(order_id) AS order_id, count(*) AS records,
       sum(amount) AS amount, min(transaction_key) AS transaction_key
FROM api_events
GROUP BY event, payment_key, business_date
