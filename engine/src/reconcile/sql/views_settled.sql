-- What the settlements say of each transaction (a transaction settled twice counts twice).
CREATE TABLE settled AS
SELECT transaction_key, sum(amount) AS amount, count(*) AS settlement_rows, min(sold_date) AS sold_date
FROM settlements
GROUP BY transaction_key
