-- needs: transactions settlements
-- description: The settled amount is not the transaction's amount (negative for a cancel).
SELECT
    e.business_date,
    e.order_id,
    e.payment_key,
    e.transaction_key,
    amount_text(e.signed) AS expected,
    amount_text(s.amount) AS actual,
    concat(e.event, ' ', e.transaction_key, ' is ', amount_text(e.signed),
           ' but its settlement rows add up to ', amount_text(s.amount)) AS message
FROM (
    SELECT *, CASE WHEN event = 'cancel' THEN -amount ELSE amount END AS signed
    FROM api_events
) e
CROSS JOIN period p
CROSS JOIN rules r
JOIN settled s ON s.transaction_key = e.transaction_key
WHERE e.business_date BETWEEN p.from_date AND p.to_date
  AND abs(e.signed - s.amount) > tolerance(e.currency, r.amount_tolerance)
