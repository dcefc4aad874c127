-- needs: transactions settlements
-- description: A transaction has no settlement row although its method's settlement lag has passed.
SELECT
    e.business_date,
    e.order_id,
    e.payment_key,
    e.transaction_key,
    amount_text(CASE WHEN e.event = 'cancel' THEN -e.amount ELSE e.amount END) AS expected,
    CAST(NULL AS VARCHAR) AS actual,
    concat(e.event, ' ', e.transaction_key, ' (', e.method, ', ', amount_text(e.amount),
           ') has no settlement row; settlements are due ',
           CAST(coalesce(l.lag_days, r.settlement_lag_days) AS VARCHAR), ' days after the transaction')
        AS message
FROM api_events e
CROSS JOIN period p
CROSS JOIN rules r
LEFT JOIN settlement_lags l ON l.method = e.method
LEFT JOIN settled s ON s.transaction_key = e.transaction_key
WHERE e.business_date BETWEEN p.from_date AND p.to_date
  AND e.business_date <= coalesce(l.due_through, r.due_through)
  AND s.transaction_key IS NULL
