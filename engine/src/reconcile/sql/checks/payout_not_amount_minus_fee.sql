-- needs: settlements
-- description: A settlement row's payout is not its amount minus its fee.
SELECT
    s.sold_date AS business_date,
    s.order_id,
    s.payment_key,
    s.transaction_key,
    amount_text(s.amount - s.fee) AS expected,
    amount_text(s.pay_out_amount) AS actual,
    concat('settlement of ', s.transaction_key, ': payout ', amount_text(s.pay_out_amount),
           ' is not amount ', amount_text(s.amount), ' - fee ', amount_text(s.fee)) AS message
FROM settlements s
CROSS JOIN period p
CROSS JOIN rules r
WHERE s.sold_date BETWEEN p.from_date AND p.to_date
  AND abs(s.pay_out_amount - (s.amount - s.fee)) > tolerance(s.currency, r.amount_tolerance)
