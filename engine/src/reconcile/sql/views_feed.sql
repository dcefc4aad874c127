-- The file feed's records as money movements: AUTH lines approve, REV lines cancel. The feed
-- has no transaction key; its TID (`transaction`) is what the API calls the payment key. Only
-- successes move money: status 10 of an AUTH line, 20 of a REV line (21 is a failed cancel).
CREATE VIEW feed_events AS
SELECT
    'feed' AS source,
    CAST(trxdate AS DATE) AS business_date,
    CAST(NULL AS VARCHAR) AS transaction_key,
    CAST("transaction" AS VARCHAR) AS payment_key,
    CAST(oid AS VARCHAR) AS order_id,
    CASE CAST(paytype AS VARCHAR)
        WHEN 'SC0010' THEN '카드'
        WHEN 'SC0030' THEN '계좌이체'
        WHEN 'SC0040' THEN '가상계좌'
        WHEN 'SC0060' THEN '휴대폰'
        WHEN 'SC0070' THEN '유선전화'
        WHEN 'SC0111' THEN '문화상품권'
        WHEN 'SC0112' THEN '게임문화상품권'
        ELSE CAST(paytype AS VARCHAR)
    END AS method,
    'KRW' AS currency,
    CASE CAST(record_kind AS VARCHAR) WHEN 'AUTH' THEN 'approval' ELSE 'cancel' END AS event,
    CAST(amount AS DECIMAL(22, 4)) AS amount
FROM feed
WHERE (CAST(record_kind AS VARCHAR) = 'AUTH' AND status = '10')
   OR (CAST(record_kind AS VARCHAR) = 'REV' AND status = '20')
