//! `engine reconcile` on a simulated month: the file feed (72 cumulative versions a day, into a
//! Delta table), the API's transactions and settlements (served by the local Toss API, into
//! Parquet) and the shop's orders and bank deposits in a real PostgreSQL, all generated from one
//! set of payments. Balanced, it says so and exits 0; with discrepancies of every kind injected
//! on random days, it finds exactly those: none missed, none invented.

use crate::support::chromium::render_page;
use crate::support::pg::PgServer;
use crate::support::receiver::Receiver;
use crate::support::toss_api::{TossApi, cancel_of, cancel_settlement, settlement, transaction};
use crate::support::*;
use chrono::{Duration as Days, NaiveDate, NaiveDateTime};
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};

const KEY: &str = "test_sk_reconcile0000000000000000";
const DB: &str = "shop";
const MID: &str = "tvivarepublica";
const DAYS: i64 = 30;
const PAYMENTS_PER_DAY: u32 = 24;
/// Versions of each day's feed file, as Toss pushes them every 20 minutes.
const VERSIONS: usize = 72;

/// A small deterministic generator, so that a failure can be replayed.
struct Dice(u64);

impl Dice {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn below(&mut self, bound: u64) -> u64 {
        self.next() % bound
    }
}

fn korea_today() -> NaiveDate {
    let korea = chrono::FixedOffset::east_opt(9 * 3600).unwrap();
    chrono::Utc::now().with_timezone(&korea).date_naive()
}

/// The month: the 30 days ending three days ago (recent enough for the API source to pull
/// again, old enough that every settlement is due).
fn month() -> (NaiveDate, NaiveDate) {
    let last = korea_today() - Days::days(3);
    (last - Days::days(DAYS - 1), last)
}

#[derive(Clone)]
enum Fate {
    Paid,
    Cancelled { day: NaiveDate, amount: i64 },
}

/// One payment, as all three sides see it.
#[derive(Clone)]
struct Payment {
    approval: Value,
    cancel: Option<Value>,
    fate: Fate,
}

impl Payment {
    fn field(&self, name: &str) -> String {
        self.approval[name].as_str().unwrap().to_owned()
    }
    fn amount(&self) -> i64 {
        self.approval["amount"].as_i64().unwrap()
    }
    fn day(&self) -> NaiveDate {
        NaiveDate::parse_from_str(&self.field("transactionAt")[..10], "%Y-%m-%d").unwrap()
    }
}

/// A feed line: mid;paytype;TID;oid;financecode;financename;buyerid;amount;escrow;time;auth;status.
fn feed_line(row: &Value, amount: i64) -> String {
    let status = if row["status"] == "DONE" { "10" } else { "20" };
    let at = NaiveDateTime::parse_from_str(
        &row["transactionAt"].as_str().unwrap()[..19],
        "%Y-%m-%dT%H:%M:%S",
    )
    .unwrap();
    format!(
        "{MID};SC0010;{};{};11;국민;buyer;{amount};N;{};{};{status}",
        row["paymentKey"].as_str().unwrap(),
        row["orderId"].as_str().unwrap(),
        at.format("%Y%m%d%H%M%S"),
        &row["transactionKey"].as_str().unwrap()[..8]
    )
}

/// Everything one simulated month is made of, before it is put where the engine reads it.
struct Month {
    from: NaiveDate,
    to: NaiveDate,
    payments: Vec<Payment>,
    /// Per (kind, day): the feed's lines.
    feed: BTreeMap<(&'static str, NaiveDate), Vec<String>>,
    /// transactionKey → settlement rows.
    settlements: BTreeMap<String, Value>,
    /// order id → (amount, state, paid_at, cancelled_amount)
    orders: BTreeMap<String, (i64, &'static str, String, i64)>,
    /// paid-out day → amount the bank received.
    deposits: BTreeMap<NaiveDate, i64>,
}

impl Month {
    fn generate(dice: &mut Dice) -> Month {
        let (from, to) = month();
        let mut payments = Vec::new();
        for offset in 0..DAYS {
            let day = from + Days::days(offset);
            for n in 1..=PAYMENTS_PER_DAY {
                let amount = 1000 * (1 + dice.below(200) as i64);
                let approval = transaction(day, n, "DONE", amount);
                let roll = dice.below(10);
                let (cancel, fate) = if roll < 2 && day < to {
                    let cancel_day = day + Days::days(dice.below(2) as i64);
                    let cancelled = if roll == 0 { amount } else { amount / 2 };
                    // Cancel keys come from the cancel's day and number: unique per payment.
                    let number = n + 100 * (offset as u32 + 1);
                    let cancel = cancel_of(&approval, cancel_day, number, cancelled);
                    (
                        Some(cancel),
                        Fate::Cancelled {
                            day: cancel_day,
                            amount: cancelled,
                        },
                    )
                } else {
                    (None, Fate::Paid)
                };
                payments.push(Payment {
                    approval,
                    cancel,
                    fate,
                });
            }
        }
        let mut month = Month {
            from,
            to,
            payments,
            feed: BTreeMap::new(),
            settlements: BTreeMap::new(),
            orders: BTreeMap::new(),
            deposits: BTreeMap::new(),
        };
        for payment in month.payments.clone() {
            month
                .feed
                .entry(("AUTH", payment.day()))
                .or_default()
                .push(feed_line(&payment.approval, payment.amount()));
            month.settlements.insert(
                payment.field("transactionKey"),
                settlement(&payment.approval, payment.day()),
            );
            let (state, cancelled) = match &payment.fate {
                Fate::Paid => ("PAID", 0),
                Fate::Cancelled { amount, .. } if *amount == payment.amount() => {
                    ("REFUNDED", *amount)
                }
                Fate::Cancelled { amount, .. } => ("PART_REFUNDED", *amount),
            };
            if let (Some(cancel), Fate::Cancelled { day, amount }) =
                (&payment.cancel, &payment.fate)
            {
                month
                    .feed
                    .entry(("REV", *day))
                    .or_default()
                    .push(feed_line(cancel, *amount));
                month.settlements.insert(
                    cancel["transactionKey"].as_str().unwrap().to_owned(),
                    cancel_settlement(&payment.approval, cancel, *day),
                );
            }
            month.orders.insert(
                payment.field("orderId"),
                (
                    payment.amount(),
                    state,
                    payment.field("transactionAt"),
                    cancelled,
                ),
            );
        }
        month
    }

    /// The bank's deposits: what the settlements promise per payout day, as they are now.
    fn pay_out(&mut self) {
        self.deposits.clear();
        for row in self.settlements.values() {
            let day = NaiveDate::parse_from_str(row["paidOutDate"].as_str().unwrap(), "%Y-%m-%d")
                .unwrap();
            *self.deposits.entry(day).or_default() += row["payOutAmount"].as_i64().unwrap();
        }
    }

    /// Writes the feed's files as the `version`-th of `VERSIONS` cumulative versions of each day.
    fn write_feed(&self, workspace: &Workspace, version: usize) {
        for ((kind, day), lines) in &self.feed {
            let shown = (lines.len() * version).div_ceil(VERSIONS);
            let mut text = String::new();
            for line in &lines[..shown] {
                text.push_str(line);
                text.push_str("\r\n");
            }
            let name = format!("{MID}_{kind}_{}.dat", day.format("%Y%m%d"));
            std::fs::write(workspace.inbox(&name), text).unwrap();
        }
    }

    fn serve(&self, api: &TossApi) {
        for payment in &self.payments {
            api.put_transaction(payment.approval.clone());
            if let Some(cancel) = &payment.cancel {
                api.put_transaction(cancel.clone());
            }
        }
        for row in self.settlements.values() {
            api.put_settlement(row.clone());
        }
    }

    fn store_orders(&self, pg: &PgServer) {
        let mut sql = String::from(
            "DROP TABLE IF EXISTS orders; DROP TABLE IF EXISTS bank_deposits;
             CREATE TABLE orders (id text PRIMARY KEY, total numeric(12, 0), state text,
                                  paid_at timestamptz, refunded numeric(12, 0));
             CREATE TABLE bank_deposits (deposited_on date, amount numeric(14, 0));
             INSERT INTO orders VALUES ('cart-1', 5000, 'PENDING', NULL, 0)",
        );
        for (id, (amount, state, paid_at, cancelled)) in &self.orders {
            sql.push_str(&format!(
                ", ('{id}', {amount}, '{state}', '{paid_at}', {cancelled})"
            ));
        }
        sql.push(';');
        if !self.deposits.is_empty() {
            sql.push_str("INSERT INTO bank_deposits VALUES ");
            let values: Vec<String> = self
                .deposits
                .iter()
                .map(|(day, amount)| format!("('{day}', {amount})"))
                .collect();
            sql.push_str(&values.join(", "));
            sql.push(';');
        }
        pg.execute(DB, &sql);
    }
}

/// What a discrepancy is known by in this test: kind, day and the key that names it.
type Finding = (String, NaiveDate, String);

/// Changes the month in each way the checks look for, on random payments and days; returns
/// what a reconcile must find.
fn inject(month: &mut Month, dice: &mut Dice) -> BTreeSet<Finding> {
    let mut expected = BTreeSet::new();
    let mut used = BTreeSet::new();
    let mut pick = |month: &Month, dice: &mut Dice, want: &dyn Fn(&Payment) -> bool| loop {
        let index = dice.below(month.payments.len() as u64) as usize;
        if want(&month.payments[index]) && used.insert(index) {
            return month.payments[index].clone();
        }
    };
    let paid = |payment: &Payment| matches!(payment.fate, Fate::Paid);
    let key = |finding: &str, day: NaiveDate, id: String| (finding.to_owned(), day, id);

    // The shop: paid orders Toss never approved.
    for n in 0..3 {
        let day = month.from + Days::days(dice.below(DAYS as u64) as i64);
        let id = format!("ghost-{n}");
        month.orders.insert(
            id.clone(),
            (4200, "PAID", format!("{day}T10:00:00+09:00"), 0),
        );
        expected.insert(key("order_not_approved", day, id));
    }
    // Toss approvals with no order.
    for _ in 0..3 {
        let payment = pick(month, dice, &paid);
        month.orders.remove(&payment.field("orderId"));
        expected.insert(key(
            "approval_without_order",
            payment.day(),
            payment.field("orderId"),
        ));
    }
    // Cancelled at Toss, paid in the shop.
    for _ in 0..2 {
        let payment = pick(
            month,
            dice,
            &|payment| matches!(payment.fate, Fate::Cancelled { amount, .. } if amount == payment.amount()),
        );
        let order = month.orders.get_mut(&payment.field("orderId")).unwrap();
        order.1 = "PAID";
        order.3 = 0;
        expected.insert(key(
            "order_status_differs",
            payment.day(),
            payment.field("orderId"),
        ));
    }
    // Amounts: two paid, one partial cancel.
    for _ in 0..2 {
        let payment = pick(month, dice, &paid);
        month.orders.get_mut(&payment.field("orderId")).unwrap().0 += 500;
        expected.insert(key(
            "order_amount_differs",
            payment.day(),
            payment.field("orderId"),
        ));
    }
    let partial = pick(
        month,
        dice,
        &|payment| matches!(payment.fate, Fate::Cancelled { amount, .. } if amount < payment.amount()),
    );
    month.orders.get_mut(&partial.field("orderId")).unwrap().3 += 100;
    expected.insert(key(
        "order_amount_differs",
        partial.day(),
        partial.field("orderId"),
    ));

    // Settlements.
    for _ in 0..3 {
        let payment = pick(month, dice, &paid);
        month.settlements.remove(&payment.field("transactionKey"));
        expected.insert(key(
            "settlement_missing",
            payment.day(),
            payment.field("transactionKey"),
        ));
    }
    for n in 0..2 {
        let day = month.from + Days::days(dice.below(DAYS as u64) as i64);
        let stranger = transaction(day, 9000 + n, "DONE", 3000);
        let row = settlement(&stranger, day);
        let id = stranger["transactionKey"].as_str().unwrap().to_owned();
        month.settlements.insert(id.clone(), row);
        expected.insert(key("settlement_without_transaction", day, id));
    }
    for _ in 0..2 {
        let payment = pick(month, dice, &paid);
        let mut more = payment.approval.clone();
        more["amount"] = Value::from(payment.amount() + 1000);
        month.settlements.insert(
            payment.field("transactionKey"),
            settlement(&more, payment.day()),
        );
        expected.insert(key(
            "settlement_amount_differs",
            payment.day(),
            payment.field("transactionKey"),
        ));
    }
    for _ in 0..2 {
        let payment = pick(month, dice, &paid);
        let row = month
            .settlements
            .get_mut(&payment.field("transactionKey"))
            .unwrap();
        row["vat"] = Value::from(row["vat"].as_i64().unwrap() + 1);
        expected.insert(key(
            "fee_not_supply_plus_vat",
            payment.day(),
            payment.field("transactionKey"),
        ));
    }
    for _ in 0..2 {
        let payment = pick(month, dice, &paid);
        let row = month
            .settlements
            .get_mut(&payment.field("transactionKey"))
            .unwrap();
        row["payOutAmount"] = Value::from(row["payOutAmount"].as_i64().unwrap() - 10);
        expected.insert(key(
            "payout_not_amount_minus_fee",
            payment.day(),
            payment.field("transactionKey"),
        ));
    }
    // The bank pays what the settlements now say, except on two days.
    month.pay_out();
    let mut payout_days: Vec<NaiveDate> = month
        .deposits
        .keys()
        .copied()
        .filter(|day| *day >= month.from && *day <= month.to)
        .collect();
    for _ in 0..2 {
        let day = payout_days.remove(dice.below(payout_days.len() as u64) as usize);
        *month.deposits.get_mut(&day).unwrap() += 777;
        expected.insert(key("payout_total_differs", day, String::new()));
    }

    // The file feed against the API.
    for n in 0..2 {
        let day = month.from + Days::days(dice.below(DAYS as u64) as i64);
        let stray = transaction(day, 8000 + n, "DONE", 7000);
        month
            .feed
            .entry(("AUTH", day))
            .or_default()
            .push(feed_line(&stray, 7000));
        expected.insert(key(
            "feed_only",
            day,
            stray["paymentKey"].as_str().unwrap().to_owned(),
        ));
    }
    for _ in 0..2 {
        let payment = pick(month, dice, &paid);
        let line = feed_line(&payment.approval, payment.amount());
        month
            .feed
            .get_mut(&("AUTH", payment.day()))
            .unwrap()
            .retain(|kept| *kept != line);
        expected.insert(key("api_only", payment.day(), payment.field("paymentKey")));
    }
    for _ in 0..2 {
        let payment = pick(month, dice, &paid);
        let line = feed_line(&payment.approval, payment.amount());
        let lines = month.feed.get_mut(&("AUTH", payment.day())).unwrap();
        let at = lines.iter().position(|kept| *kept == line).unwrap();
        lines[at] = feed_line(&payment.approval, payment.amount() + 1);
        expected.insert(key(
            "feed_api_differs",
            payment.day(),
            payment.field("paymentKey"),
        ));
    }
    expected
}

/// The pipelines that load the month, and the reconcile file over what they write.
fn files(workspace: &Workspace, api: &TossApi) -> (Vec<PathBuf>, PathBuf) {
    let api_pipeline = |dataset: &str| {
        workspace.pipeline(
            &format!("{dataset}.toml"),
            &format!(
                r#"[pipeline]
name = "api-{dataset}"
[source]
type = "toss-api"
dataset = "{dataset}"
secret_key = "${{TOSS_SECRET_KEY}}"
endpoint = "{}"
refresh_days = 40
[[sinks]]
type = "{sink}"
path = "lake/api/{dataset}"
"#,
                api.base_url(),
                // Settlements into a Delta table, transactions into Parquet: the reconcile
                // reads both kinds of lake.
                sink = if dataset == "settlements" {
                    "delta"
                } else {
                    "parquet"
                },
            ),
        )
    };
    let feed = workspace.pipeline(
        "feed.toml",
        r#"[pipeline]
name = "feed"
[source]
type = "dir"
path = "inbox"
settle_secs = 0
[[sinks]]
type = "parquet"
path = "lake/feed"
"#,
    );
    let reconcile = workspace.pipeline(
        "books.toml",
        r#"[reconcile]
name = "books"

[inputs.feed]
path = "lake/feed"
[inputs.transactions]
path = "lake/api/transactions"
[inputs.settlements]
path = "lake/api/settlements"
[inputs.orders]
url = "${SHOP_DATABASE_URL}"
query = """
SELECT id AS order_id, total AS amount, paid_at, refunded AS cancelled_amount,
       CASE state WHEN 'PAID' THEN 'paid' WHEN 'PART_REFUNDED' THEN 'partially_cancelled'
                  ELSE 'cancelled' END AS status
FROM orders WHERE state <> 'PENDING'
"""
[inputs.payouts]
url = "${SHOP_DATABASE_URL}"
query = "SELECT deposited_on AS paid_out_date, amount FROM bank_deposits"

[rules]
settlement_lag_days = 2

[[outputs.discrepancies]]
type = "postgres"
url = "${SHOP_DATABASE_URL}"
table = "reconcile_discrepancies"
[[outputs.discrepancies]]
type = "parquet"
path = "lake/discrepancies"
[[outputs.summary]]
type = "parquet"
path = "lake/summary"
"#,
    );
    (
        vec![
            api_pipeline("transactions"),
            api_pipeline("settlements"),
            feed,
        ],
        reconcile,
    )
}

fn load(workspace: &Workspace, pipeline: &Path, month: &Month) {
    let (from, to) = (month.from.to_string(), month.to.to_string());
    let run = workspace.engine_with_env(
        &[
            "run",
            pipeline.to_str().unwrap(),
            "--from",
            &from,
            "--to",
            &to,
            "-q",
        ],
        &[("TOSS_SECRET_KEY", KEY)],
    );
    assert_eq!(run.code, 0, "{}", run.all_output());
}

fn reconcile(workspace: &Workspace, file: &Path, month: &Month, pg: &PgServer) -> (Run, Value) {
    let (from, to) = (month.from.to_string(), month.to.to_string());
    let run = workspace.engine_with_env(
        &[
            "reconcile",
            file.to_str().unwrap(),
            "--from",
            &from,
            "--to",
            &to,
            "--json",
        ],
        &[("SHOP_DATABASE_URL", &pg.url(DB))],
    );
    let json: Value = serde_json::from_str(&run.stdout)
        .unwrap_or_else(|err| panic!("{err}: {}", run.all_output()));
    assert!(
        !run.all_output().contains(crate::support::pg::PASSWORD),
        "the database password leaked"
    );
    (run, json)
}

fn findings(json: &Value) -> BTreeSet<Finding> {
    json["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| {
            let kind = item["kind"].as_str().unwrap().to_owned();
            let day =
                NaiveDate::parse_from_str(item["business_date"].as_str().unwrap(), "%Y-%m-%d")
                    .unwrap();
            let id = match kind.as_str() {
                "order_not_approved"
                | "approval_without_order"
                | "order_status_differs"
                | "order_amount_differs" => item["order_id"].as_str(),
                "feed_only" | "api_only" | "feed_api_differs" => item["payment_key"].as_str(),
                "payout_total_differs" => Some(""),
                _ => item["transaction_key"].as_str(),
            };
            (kind, day, id.unwrap_or("?").to_owned())
        })
        .collect()
}

#[test]
fn a_month_reconciles_balanced_then_finds_exactly_the_injected_discrepancies() {
    let workspace = Workspace::new();
    let api = TossApi::start(KEY);
    let pg = PgServer::start();
    pg.create_database(DB);
    let mut dice = Dice(0x5eed_2026_1202);
    let mut month = Month::generate(&mut dice);
    month.pay_out();
    month.serve(&api);
    month.store_orders(&pg);
    let (pipelines, books) = files(&workspace, &api);
    load(&workspace, &pipelines[0], &month);
    load(&workspace, &pipelines[1], &month);
    for version in 1..=VERSIONS {
        month.write_feed(&workspace, version);
        load(&workspace, &pipelines[2], &month);
    }

    let (run, json) = reconcile(&workspace, &books, &month, &pg);
    assert_eq!(run.code, 0, "{}", run.all_output());
    assert_eq!(json["balanced"], true, "{:#}", json["discrepancies"]);
    assert_eq!(json["days"].as_array().unwrap().len(), DAYS as usize);
    let approvals: u64 = json["days"]
        .as_array()
        .unwrap()
        .iter()
        .map(|day| day["approved_count"].as_u64().unwrap())
        .sum();
    assert_eq!(approvals, month.payments.len() as u64);
    assert_eq!(
        pg.value(DB, "SELECT count(*) FROM reconcile_discrepancies")
            .as_deref(),
        Some("0")
    );

    let expected = inject(&mut month, &mut dice);
    api.heal();
    for payment in &month.payments {
        api.remove_settlement(&payment.field("transactionKey"));
    }
    month.serve(&api);
    month.store_orders(&pg);
    load(&workspace, &pipelines[1], &month);
    month.write_feed(&workspace, VERSIONS);
    load(&workspace, &pipelines[2], &month);

    let (run, json) = reconcile(&workspace, &books, &month, &pg);
    assert_eq!(run.code, 3, "{}", run.all_output());
    let found = findings(&json);
    let missed: Vec<_> = expected.difference(&found).collect();
    let invented: Vec<_> = found.difference(&expected).collect();
    assert!(
        missed.is_empty() && invented.is_empty(),
        "missed {missed:#?}\ninvented {invented:#?}"
    );
    let kinds: BTreeSet<&str> = expected.iter().map(|(kind, _, _)| kind.as_str()).collect();
    assert_eq!(kinds.len(), 13, "every kind of discrepancy is injected");

    // The outputs hold exactly the findings, also after a second run.
    let run_again = reconcile(&workspace, &books, &month, &pg).0;
    assert_eq!(run_again.code, 3);
    assert_eq!(
        pg.value(
            DB,
            "SELECT count(DISTINCT discrepancy_id) || '/' || count(*) FROM reconcile_discrepancies"
        )
        .as_deref(),
        Some(format!("{0}/{0}", expected.len()).as_str())
    );
    let lake: usize = workspace
        .lake_files()
        .iter()
        .filter(|file| file.starts_with("discrepancies/"))
        .map(|file| total_rows(&workspace.read_lake(file)))
        .sum();
    assert_eq!(lake, expected.len());

    // The report shows what the JSON says, and a browser renders it without complaint.
    let report = PathBuf::from(json["report"].as_str().unwrap());
    let report = workspace.path(report.to_str().unwrap());
    let artefacts = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../target/test-artefacts");
    std::fs::create_dir_all(&artefacts).unwrap();
    let rendered = render_page(&report, &artefacts.join("reconcile-report.png"));
    assert!(
        rendered.console_messages.is_empty(),
        "{:?}",
        rendered.console_messages
    );
    let dom = &rendered.dom;
    assert!(dom.contains(&format!("data-discrepancies=\"{}\"", expected.len())));
    for kind in kinds {
        let count = expected
            .iter()
            .filter(|(found, _, _)| found == kind)
            .count();
        let cell = format!("data-kind-total=\"{kind}\"");
        let at = dom
            .find(&cell)
            .unwrap_or_else(|| panic!("no total of {kind}"));
        let text = &dom[at..];
        let shown = text[text.find('>').unwrap() + 1..text.find('<').unwrap()].trim();
        assert_eq!(shown, count.to_string(), "{kind}");
    }
    let rows = dom
        .split("id=\"discrepancy-rows\"")
        .nth(1)
        .expect("the discrepancy table")
        .matches("<tr data-kind=")
        .count();
    assert_eq!(rows, expected.len(), "discrepancy table rows");
    for day in json["days"].as_array().unwrap() {
        let point = format!(
            "data-series=\"net_sales\" data-date=\"{}\" data-value=\"{}\"",
            day["date"].as_str().unwrap(),
            day["net_sales"].as_f64().unwrap()
        );
        assert!(dom.contains(&point), "chart lacks {point}");
    }
}

#[test]
fn a_wrong_orders_query_a_missing_table_and_a_bad_check_name_the_file_and_what_is_wrong() {
    let workspace = Workspace::new();
    let pg = PgServer::start();
    pg.create_database(DB);
    pg.execute(
        DB,
        "CREATE TABLE orders (id text, total numeric, state text, paid_at timestamptz)",
    );
    std::fs::create_dir_all(workspace.path("lake/feed")).unwrap();
    let write = |text: &str| workspace.pipeline("books.toml", text);
    let base = "[reconcile]\nname = \"books\"\n[inputs.transactions]\npath = \"lake/none\"\n";
    let run = |file: &PathBuf| {
        workspace.engine_with_env(
            &["reconcile", file.to_str().unwrap(), "--date", "2007-07-06"],
            &[("SHOP_DATABASE_URL", &pg.url(DB))],
        )
    };

    let missing = run(&write(base));
    assert_eq!(missing.code, 1, "{}", missing.all_output());
    let stderr = missing.stderr;
    assert!(stderr.contains("books.toml"), "{stderr}");
    assert!(stderr.contains("[inputs.transactions] path"), "{stderr}");
    assert!(stderr.contains("does not exist"), "{stderr}");

    // The Toss side exists from here on: an empty day of the feed is enough.
    let feed = workspace.pipeline(
        "feed.toml",
        "[pipeline]\nname = \"feed\"\n[source]\ntype = \"dir\"\npath = \"inbox\"\nsettle_secs = 0\n\
         [[sinks]]\ntype = \"parquet\"\npath = \"lake/feed\"\n",
    );
    std::fs::write(
        workspace.inbox("toss_AUTH_20070706.dat"),
        toss_file(2, "10"),
    )
    .unwrap();
    let loaded = workspace.engine(&["run", feed.to_str().unwrap(), "--date", "2007-07-06"]);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());
    let with_feed = "[reconcile]\nname = \"books\"\n[inputs.feed]\npath = \"lake/feed\"\n";

    let wrong_query = run(&write(&format!(
        "{with_feed}[inputs.orders]\nurl = \"${{SHOP_DATABASE_URL}}\"\n\
         query = \"SELECT id AS order_id, total AS amount, paid_at FROM orders\"\n"
    )));
    assert_eq!(wrong_query.code, 2, "{}", wrong_query.all_output());
    let stderr = wrong_query.stderr;
    assert!(
        stderr.contains("books.toml:7: [inputs.orders] query"),
        "{stderr}"
    );
    assert!(stderr.contains("no column status"), "{stderr}");
    assert!(!stderr.contains(crate::support::pg::PASSWORD), "{stderr}");

    let failing_query = run(&write(&format!(
        "{with_feed}[inputs.orders]\nurl = \"${{SHOP_DATABASE_URL}}\"\n\
         query = \"SELECT * FROM order_table\"\n"
    )));
    assert_eq!(failing_query.code, 2, "{}", failing_query.all_output());
    assert!(
        failing_query
            .stderr
            .contains("relation \"order_table\" does not exist"),
        "{}",
        failing_query.stderr
    );

    std::fs::write(
        workspace.path("big.sql"),
        "SELECT oid AS order_id FROM feed WHERE",
    )
    .unwrap();
    std::fs::write(
        workspace.path("nameless.sql"),
        "SELECT trxdate AS business_date, oid AS order_id FROM feed",
    )
    .unwrap();
    for (file, says) in [
        ("big.sql", "not a query the engine can run"),
        ("nameless.sql", "returns no column message"),
    ] {
        let bad = run(&write(&format!(
            "{with_feed}[[checks]]\nfile = \"{file}\"\n"
        )));
        assert_eq!(bad.code, 1, "{}", bad.all_output());
        let check = file.trim_end_matches(".sql");
        assert!(
            bad.stderr.contains(&format!("check {check}")),
            "{}",
            bad.stderr
        );
        assert!(bad.stderr.contains(file), "{}", bad.stderr);
        assert!(bad.stderr.contains(says), "{}", bad.stderr);
    }
}

#[test]
fn a_custom_check_reports_beside_the_built_in_ones() {
    let workspace = Workspace::new();
    let feed = workspace.pipeline(
        "feed.toml",
        "[pipeline]\nname = \"feed\"\n[source]\ntype = \"dir\"\npath = \"inbox\"\nsettle_secs = 0\n\
         [[sinks]]\ntype = \"parquet\"\npath = \"lake/feed\"\n",
    );
    std::fs::write(
        workspace.inbox("toss_AUTH_20070706.dat"),
        toss_file(5, "10"),
    )
    .unwrap();
    let loaded = workspace.engine(&["run", feed.to_str().unwrap(), "--date", "2007-07-06"]);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());
    std::fs::create_dir_all(workspace.path("checks")).unwrap();
    std::fs::write(
        workspace.path("checks/big_payments.sql"),
        "-- description: A payment of more than 1,003 won needs a second look.\n\
         SELECT business_date, order_id, payment_key, amount_text(amount) AS actual,\n\
                concat('order ', order_id, ' paid ', amount_text(amount)) AS message\n\
         FROM feed_events CROSS JOIN period p\n\
         WHERE amount > 1003 AND business_date BETWEEN p.from_date AND p.to_date\n",
    )
    .unwrap();
    let receiver = Receiver::start("whsec_dG9zcy1ldGwtZTJlLXJlY29uY2lsZS1ob29rLWtleSE=");
    let books = workspace.pipeline(
        "books.toml",
        &format!(
            "[reconcile]\nname = \"books\"\n[inputs.feed]\npath = \"lake/feed\"\n\
             [[checks]]\nfile = \"checks/big_payments.sql\"\n\
             [[outputs.discrepancies]]\ntype = \"webhook\"\nurl = \"{}\"\n\
             secret = \"${{HOOK_SECRET}}\"\n",
            receiver.url()
        ),
    );
    let reconcile = |args: &[&str]| {
        let mut all = vec!["reconcile", books.to_str().unwrap(), "--date", "2007-07-06"];
        all.extend_from_slice(args);
        workspace.engine_with_env(
            &all,
            &[(
                "HOOK_SECRET",
                "whsec_dG9zcy1ldGwtZTJlLXJlY29uY2lsZS1ob29rLWtleSE=",
            )],
        )
    };
    let run = reconcile(&[]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert!(
        run.stdout.contains("big_payments (custom)"),
        "{}",
        run.stdout
    );
    assert!(run.stdout.contains("DISCREPANCIES: 2"), "{}", run.stdout);
    // The webhook got each discrepancy once; a second run finds them again and sends nothing.
    receiver.assert_every_request_signed();
    assert_eq!(receiver.deduplicated_records().len(), 2);
    let requests = receiver.seen().len();
    let json = reconcile(&["--json"]);
    assert_eq!(json.code, 3, "{}", json.all_output());
    assert_eq!(
        receiver.seen().len(),
        requests,
        "a known discrepancy was sent again"
    );
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    let actual: Vec<&str> = json["discrepancies"]
        .as_array()
        .unwrap()
        .iter()
        .map(|item| item["actual"].as_str().unwrap())
        .collect();
    assert_eq!(actual, ["1004", "1005"]);
}

#[test]
fn the_shipped_reconcile_runs_on_the_sample_data_and_finds_its_one_discrepancy() {
    // As the README runs it: daily.toml first, then reconcile.toml, from the repository's
    // layout (copied, so the checkout stays clean).
    let workspace = Workspace::new();
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    std::fs::create_dir_all(workspace.path("pipelines/inbox")).unwrap();
    std::fs::create_dir_all(workspace.path("pipelines/reconcile")).unwrap();
    for file in [
        "inbox/toss_AUTH_20070706.dat",
        "inbox/toss_REV_20070706.dat",
        "reconcile/orders.csv",
        "reconcile.toml",
    ] {
        std::fs::copy(
            root.join("pipelines").join(file),
            workspace.path(&format!("pipelines/{file}")),
        )
        .unwrap();
    }
    let daily = std::fs::read_to_string(root.join("pipelines/daily.toml"))
        .unwrap()
        .replace(
            "\"target/plugins",
            &format!("\"{}/target/plugins", root.display()),
        );
    std::fs::write(workspace.path("pipelines/daily.toml"), daily).unwrap();
    let loaded = workspace.engine(&["run", "pipelines/daily.toml"]);
    assert_eq!(loaded.code, 0, "{}", loaded.all_output());

    let run = workspace.engine(&["reconcile", "pipelines/reconcile.toml"]);
    assert_eq!(run.code, 3, "{}", run.all_output());
    assert!(run.stdout.contains("DISCREPANCIES: 1"), "{}", run.stdout);
    let report = workspace.path("reports/sample-books_2007-07-06_2007-07-06.html");
    let html = std::fs::read_to_string(&report).unwrap();
    assert!(
        html.contains("Toss_20070706235648_zzanng1"),
        "the report names the order"
    );
    let rows: usize = workspace
        .lake_files()
        .iter()
        .filter(|file| file.starts_with("reconcile/discrepancies/"))
        .map(|file| total_rows(&workspace.read_lake(file)))
        .sum();
    assert_eq!(rows, 1);
    let json = workspace.engine(&["reconcile", "pipelines/reconcile.toml", "--json"]);
    let json: Value = serde_json::from_str(&json.stdout).unwrap();
    assert_eq!(json["discrepancies"][0]["kind"], "order_status_differs");
    assert_eq!(json["discrepancies"][0]["expected"], "cancelled");
    assert_eq!(json["discrepancies"][0]["actual"], "paid");
}
