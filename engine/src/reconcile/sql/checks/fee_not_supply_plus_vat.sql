-- needs: settlements
-- description: A settlement row's fee is not its supply amount plus VAT.
SELECT
    s.sold_date AS business_date,
    s.order_id,
    s.payment_key,
    s.transaction_key,
    amount_text(s.supply_amount + s.vat) AS expected,
    amount_text(s.fee) AS actual,
    concat('settlement of ', s.transaction_key, ': fee ', amount_text(s.fee), ' is not supply ',
           amount_text(s.supply_amount), ' + VAT ', amount_text(s.vat)) AS message
FROM settlements s
CROSS JOIN period p
CROSS JOIN rules r
WHERE s.sold_date BETWEEN p.from_date AND p.to_date
  AND abs(s.fee - (s.supply_amount + s.vat)) > tolerance(s.currency, r.amount_tolerance)
