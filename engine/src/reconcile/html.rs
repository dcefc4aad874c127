//! The HTML report of one `engine reconcile` run.
//!
//! `render` turns a `ReportData` into one self-contained HTML document. Everything the page
//! shows is built here, on the server side, as plain markup: the header and verdict, the chart of
//! daily net sales against settled and paid-out amounts (an inline SVG whose coordinates are
//! computed in Rust), the counts of discrepancies per check and day, every discrepancy row and
//! the per-day totals. The page loads nothing: no script, font, image or style sheet from the
//! network, so it opens the same from a laptop's disk, an e-mail attachment or an archive years
//! later, and prints as it shows.
//!
//! Building the markup server-side keeps the page a record rather than a program: it reads and
//! prints with scripts turned off, a 5,000-row report is just a long table (no data is shipped
//! as JavaScript objects and rebuilt in the browser), and every number a test needs sits in a
//! `data-*` attribute next to the formatted text:
//!
//! - chart points: `data-series` (`net_sales`, `settled` or `paid_out`), `data-date`
//!   (`YYYY-MM-DD`) and `data-value` (the exact amount, Rust's shortest round-trip form of the
//!   `f64`);
//! - counts table (`#counts`): one row per check, in run order, then any kind that has rows but
//!   no check; cells with `data-kind`, `data-date` and `data-count` (also `0`), row totals with
//!   `data-kind-total` (the check's own count), column totals with `data-date-total` and the
//!   grand total with `data-grand-total`;
//! - discrepancy rows (`#discrepancies tbody tr[data-kind]`): `data-kind` and `data-date`;
//! - `#shown-count`: `data-shown` and `data-total`, kept up to date by the filters;
//! - `#verdict`: `data-discrepancies`, the sum of the row totals above;
//! - per-day totals (`#days`): body rows with `data-date`, numeric cells with `data-field`
//!   (`approved_count`, `cancelled_count`, `net_sales`, `fees`, `settled`, `paid_out`) and
//!   `data-value`; the footer row (`data-date="total"`) holds the sums.
//!
//! The only script is a small filter over the discrepancy rows that are already in the page.

use chrono::{Datelike, NaiveDate, Weekday};
use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fmt::{self, Write};

/// Everything one reconcile run's report shows.
#[derive(Debug, Clone, PartialEq)]
pub struct ReportData {
    /// The reconcile file's `[reconcile]` name.
    pub name: String,
    pub from: NaiveDate,
    pub to: NaiveDate,
    /// When the run happened, as shown, e.g. `2026-12-02 09:14:03 KST`.
    pub generated_at: String,
    /// (input name, where it was read: a path or `postgres query`); never secrets.
    pub inputs: Vec<(String, String)>,
    /// One per business day `from..=to`, ascending.
    pub days: Vec<DayTotals>,
    /// Every check that ran (built-in and custom), in run order, including those with 0
    /// findings.
    pub checks: Vec<CheckCount>,
    pub discrepancies: Vec<DiscrepancyRow>,
}

/// One business day's totals.
#[derive(Debug, Clone, PartialEq)]
pub struct DayTotals {
    pub date: NaiveDate,
    /// Approved − cancelled, KRW.
    pub net_sales: f64,
    /// Settlement amounts with `sold_date` on that day.
    pub settled: f64,
    /// Payouts with `paid_out_date` on that day.
    pub paid_out: f64,
    pub fees: f64,
    pub approved_count: u64,
    pub cancelled_count: u64,
}

/// One check that ran, and how many discrepancies it found.
#[derive(Debug, Clone, PartialEq)]
pub struct CheckCount {
    /// E.g. `settlement_missing`.
    pub kind: String,
    /// One sentence.
    pub description: String,
    /// A merchant's own SQL check.
    pub custom: bool,
    pub count: u64,
}

/// One discrepancy found by a check: the checks' own type, shown as it is.
pub use super::checks::Discrepancy as DiscrepancyRow;

/// The report as one self-contained HTML document (UTF-8).
pub fn render(report: &ReportData) -> String {
    let mut out = String::with_capacity(32 * 1024 + report.discrepancies.len() * 600);
    write_document(&mut out, report).expect("writing to a String cannot fail");
    out
}

/// A period longer than this shows only the days with discrepancies in the counts table.
const MAX_ALL_DAY_COLUMNS: usize = 31;

fn write_document(out: &mut String, r: &ReportData) -> fmt::Result {
    let counts = CountTable::new(r);
    out.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
    out.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
    out.push_str("<meta name=\"generator\" content=\"engine reconcile\">\n");
    writeln!(
        out,
        "<title>{} · {} – {} · Reconcile report</title>",
        esc(&r.name),
        r.from,
        r.to
    )?;
    out.push_str("<style>\n");
    out.push_str(CSS);
    out.push_str("</style>\n</head>\n<body>\n<main>\n");
    write_header(out, r, &counts)?;
    write_chart_section(out, &r.days)?;
    write_counts(out, &counts)?;
    write_discrepancies(out, r, &counts)?;
    write_days(out, &r.days)?;
    writeln!(
        out,
        "<footer>Generated by <code>engine reconcile</code> at {}.</footer>",
        esc(&r.generated_at)
    )?;
    out.push_str("</main>\n<script>\n");
    out.push_str(SCRIPT);
    out.push_str("</script>\n</body>\n</html>\n");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Header

fn write_header(out: &mut String, r: &ReportData, counts: &CountTable) -> fmt::Result {
    let days = (r.to - r.from).num_days() + 1;
    let total = counts.grand_total;
    out.push_str("<header class=\"card top\">\n<div class=\"title\">\n");
    out.push_str("<div class=\"eyebrow\">Reconcile report</div>\n");
    writeln!(out, "<h1 id=\"report-name\">{}</h1>", esc(&r.name))?;
    writeln!(
        out,
        "<div class=\"meta\"><span>Period <b id=\"period\" data-from=\"{f}\" data-to=\"{t}\">{f} – {t}</b> ({days} {unit})</span>\
         <span>Generated <b id=\"generated-at\">{g}</b></span></div>",
        f = r.from,
        t = r.to,
        days = days.max(0),
        unit = if days == 1 { "day" } else { "days" },
        g = esc(&r.generated_at),
    )?;
    let custom = r.checks.iter().filter(|c| c.custom).count();
    writeln!(
        out,
        "<div class=\"meta\"><span>{} {} ran{}</span><span>{} discrepancy {} listed</span></div>",
        r.checks.len(),
        if r.checks.len() == 1 {
            "check"
        } else {
            "checks"
        },
        if custom > 0 {
            format!(" ({custom} custom)")
        } else {
            String::new()
        },
        group(r.discrepancies.len() as u64),
        if r.discrepancies.len() == 1 {
            "row"
        } else {
            "rows"
        },
    )?;
    out.push_str("</div>\n");
    if total == 0 {
        out.push_str(
            "<div id=\"verdict\" class=\"verdict ok\" data-discrepancies=\"0\">\
             <span class=\"mark\">✓</span> Balanced</div>\n",
        );
    } else {
        writeln!(
            out,
            "<div id=\"verdict\" class=\"verdict bad\" data-discrepancies=\"{total}\">\
             <span class=\"mark\">!</span> {} {}</div>",
            group(total),
            if total == 1 {
                "discrepancy"
            } else {
                "discrepancies"
            },
        )?;
    }
    out.push_str("<div class=\"inputs\">\n<h2>Inputs</h2>\n");
    if r.inputs.is_empty() {
        out.push_str("<p class=\"muted\">No inputs.</p>\n");
    } else {
        out.push_str("<table id=\"inputs\"><tbody>\n");
        for (name, source) in &r.inputs {
            writeln!(
                out,
                "<tr><th scope=\"row\">{}</th><td><code>{}</code></td></tr>",
                esc(name),
                esc(source)
            )?;
        }
        out.push_str("</tbody></table>\n");
    }
    out.push_str("</div>\n");
    write_summary(out, &r.days)?;
    out.push_str("</header>\n");
    Ok(())
}

/// The period's totals as a row of figures under the header.
fn write_summary(out: &mut String, days: &[DayTotals]) -> fmt::Result {
    let sum = |f: fn(&DayTotals) -> f64| days.iter().map(f).sum::<f64>();
    let approved: u64 = days.iter().map(|d| d.approved_count).sum();
    let cancelled: u64 = days.iter().map(|d| d.cancelled_count).sum();
    out.push_str("<dl class=\"summary\" id=\"summary\">\n");
    for (id, label, value) in [
        ("net_sales", "Net sales", sum(|d| d.net_sales)),
        ("fees", "Fees", sum(|d| d.fees)),
        ("settled", "Settled", sum(|d| d.settled)),
        ("paid_out", "Paid out", sum(|d| d.paid_out)),
    ] {
        writeln!(
            out,
            "<div><dt>{label}</dt><dd data-total=\"{id}\" data-value=\"{}\"{}>{}</dd></div>",
            num_attr(value),
            neg_class(value),
            won(value)
        )?;
    }
    writeln!(
        out,
        "<div><dt>Approved / cancelled</dt><dd>{} / {}</dd></div>",
        group(approved),
        group(cancelled)
    )?;
    out.push_str("</dl>\n");
    Ok(())
}

// ---------------------------------------------------------------------------------------------
// Chart

fn write_chart_section(out: &mut String, days: &[DayTotals]) -> fmt::Result {
    out.push_str("<section class=\"card\" id=\"chart\">\n");
    out.push_str("<h2>Daily net sales, settled and paid out</h2>\n");
    write_chart(out, days)?;
    out.push_str(
        "<p class=\"note\">Net sales are approved minus cancelled amounts of the day; settled are \
         the settlement amounts of the day's sales; paid out are the payouts made on that day.</p>\n",
    );
    out.push_str("</section>\n");
    Ok(())
}

/// The chart's geometry, in SVG user units (the SVG scales to the page's width).
const CHART_W: f64 = 1100.0;
const CHART_H: f64 = 340.0;
const PLOT_LEFT: f64 = 92.0;
const PLOT_RIGHT: f64 = 16.0;
const PLOT_TOP: f64 = 44.0;
const PLOT_BOTTOM: f64 = 40.0;

fn write_chart(out: &mut String, days: &[DayTotals]) -> fmt::Result {
    let values = |d: &DayTotals| [finite(d.net_sales), finite(d.settled), finite(d.paid_out)];
    let (mut lo, mut hi) = (0.0_f64, 0.0_f64);
    for d in days {
        for v in values(d) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    let axis = Axis::new(lo, hi);
    let plot_w = CHART_W - PLOT_LEFT - PLOT_RIGHT;
    let plot_h = CHART_H - PLOT_TOP - PLOT_BOTTOM;
    let y = |v: f64| PLOT_TOP + plot_h * (axis.hi - v) / (axis.hi - axis.lo);
    let n = days.len().max(1);
    let slot = plot_w / n as f64;
    let x = |i: usize| PLOT_LEFT + slot * (i as f64 + 0.5);

    writeln!(
        out,
        "<svg id=\"daily-chart\" class=\"chart\" viewBox=\"0 0 {CHART_W} {CHART_H}\" \
         role=\"img\" aria-labelledby=\"daily-chart-title\" xmlns=\"http://www.w3.org/2000/svg\">"
    )?;
    out.push_str(
        "<title id=\"daily-chart-title\">Daily net sales against settled and paid-out amounts</title>\n",
    );

    // Legend.
    out.push_str("<g class=\"legend\" transform=\"translate(92 14)\">\n");
    out.push_str("<rect class=\"bar-net\" x=\"0\" y=\"2\" width=\"14\" height=\"10\" rx=\"2\"/><text x=\"20\" y=\"11\">Net sales</text>\n");
    out.push_str("<line class=\"line-settled\" x1=\"104\" y1=\"7\" x2=\"126\" y2=\"7\"/><circle class=\"dot-settled\" cx=\"115\" cy=\"7\" r=\"3\"/><text x=\"132\" y=\"11\">Settled</text>\n");
    out.push_str("<line class=\"line-paid\" x1=\"200\" y1=\"7\" x2=\"222\" y2=\"7\"/><circle class=\"dot-paid\" cx=\"211\" cy=\"7\" r=\"3\"/><text x=\"228\" y=\"11\">Paid out</text>\n");
    out.push_str("</g>\n");

    // Y axis: grid lines and won labels.
    out.push_str("<g class=\"y-axis\">\n");
    for tick in axis.ticks() {
        let ty = y(tick);
        writeln!(
            out,
            "<line class=\"{}\" x1=\"{PLOT_LEFT}\" x2=\"{:.1}\" y1=\"{ty:.1}\" y2=\"{ty:.1}\"/>\
             <text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\" data-tick=\"{}\">{}</text>",
            if tick == 0.0 { "zero" } else { "grid" },
            CHART_W - PLOT_RIGHT,
            PLOT_LEFT - 8.0,
            ty + 4.0,
            num_attr(tick),
            axis.label(tick),
        )?;
    }
    out.push_str("</g>\n");

    if days.is_empty() {
        writeln!(
            out,
            "<text class=\"empty\" x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">No days in the period</text>",
            PLOT_LEFT + plot_w / 2.0,
            PLOT_TOP + plot_h / 2.0
        )?;
        out.push_str("</svg>\n");
        return Ok(());
    }

    // X axis: a date label every `step` days.
    let step = days.len().div_ceil(16);
    out.push_str("<g class=\"x-axis\">\n");
    writeln!(
        out,
        "<line class=\"axis\" x1=\"{PLOT_LEFT}\" x2=\"{:.1}\" y1=\"{:.1}\" y2=\"{:.1}\"/>",
        CHART_W - PLOT_RIGHT,
        PLOT_TOP + plot_h,
        PLOT_TOP + plot_h
    )?;
    for (i, d) in days.iter().enumerate() {
        if i.is_multiple_of(step) {
            writeln!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{:02}-{:02}</text>",
                x(i),
                PLOT_TOP + plot_h + 18.0,
                d.date.month(),
                d.date.day()
            )?;
        }
    }
    out.push_str("</g>\n");

    // Net sales as bars from the zero line.
    let bar_w = (slot * 0.6).clamp(1.0, 36.0);
    out.push_str("<g class=\"series\" data-series-group=\"net_sales\">\n");
    for (i, d) in days.iter().enumerate() {
        let v = finite(d.net_sales);
        let top = y(v.max(0.0));
        let bottom = y(v.min(0.0));
        writeln!(
            out,
            "<rect class=\"bar-net\" x=\"{:.1}\" y=\"{top:.1}\" width=\"{bar_w:.1}\" height=\"{:.1}\" \
             data-series=\"net_sales\" data-date=\"{}\" data-value=\"{}\"><title>{} · Net sales {}</title></rect>",
            x(i) - bar_w / 2.0,
            (bottom - top).max(0.0),
            d.date,
            num_attr(d.net_sales),
            d.date,
            won(d.net_sales)
        )?;
    }
    out.push_str("</g>\n");

    // Settled and paid out as lines with a dot per day.
    let r = if days.len() <= 62 { 3.0 } else { 1.5 };
    for (series, label, class, get) in [
        (
            "settled",
            "Settled",
            "settled",
            (|d: &DayTotals| d.settled) as fn(&DayTotals) -> f64,
        ),
        ("paid_out", "Paid out", "paid", |d: &DayTotals| d.paid_out),
    ] {
        writeln!(out, "<g class=\"series\" data-series-group=\"{series}\">")?;
        if days.len() > 1 {
            write!(out, "<polyline class=\"line-{class}\" points=\"")?;
            for (i, d) in days.iter().enumerate() {
                if i > 0 {
                    out.push(' ');
                }
                write!(out, "{:.1},{:.1}", x(i), y(finite(get(d))))?;
            }
            out.push_str("\"/>\n");
        }
        for (i, d) in days.iter().enumerate() {
            writeln!(
                out,
                "<circle class=\"dot-{class}\" cx=\"{:.1}\" cy=\"{:.1}\" r=\"{r}\" data-series=\"{series}\" \
                 data-date=\"{}\" data-value=\"{}\"><title>{} · {label} {}</title></circle>",
                x(i),
                y(finite(get(d))),
                d.date,
                num_attr(get(d)),
                d.date,
                won(get(d))
            )?;
        }
        out.push_str("</g>\n");
    }
    out.push_str("</svg>\n");
    Ok(())
}

/// A value axis from `lo` to `hi` (both including 0), widened to round tick steps.
struct Axis {
    lo: f64,
    hi: f64,
    step: f64,
}

impl Axis {
    fn new(lo: f64, hi: f64) -> Axis {
        let (lo, hi) = if hi - lo > 0.0 && (hi - lo).is_finite() {
            (lo, hi)
        } else {
            (0.0, 1_000.0)
        };
        let step = nice_step((hi - lo) / 5.0);
        let lo = (lo / step).floor() * step;
        let hi = (hi / step).ceil() * step;
        // Guard against rounding leaving an empty range.
        let hi = if hi > lo { hi } else { lo + step };
        Axis { lo, hi, step }
    }

    fn ticks(&self) -> Vec<f64> {
        let count = ((self.hi - self.lo) / self.step).round() as i64;
        (0..=count.clamp(0, 50))
            .map(|i| {
                let t = self.lo + self.step * i as f64;
                // Snap values like 1e-10 to 0 so the zero line is found.
                if t.abs() < self.step * 1e-9 { 0.0 } else { t }
            })
            .collect()
    }

    /// A won label for a tick, abbreviated (K, M, B) when the axis reaches a million.
    fn label(&self, tick: f64) -> String {
        if tick == 0.0 {
            return "₩0".to_owned();
        }
        let top = self.lo.abs().max(self.hi.abs());
        let (unit, suffix) = if top >= 1e9 {
            (1e9, "B")
        } else if top >= 1e6 {
            (1e6, "M")
        } else if top >= 1e5 {
            (1e3, "K")
        } else {
            return won(tick);
        };
        // As many decimals as the step needs (250,000 in millions: 2), at most 3.
        let scaled_step = self.step / unit;
        let decimals = (0..=3)
            .find(|&d| {
                let s = scaled_step * 10f64.powi(d);
                (s - s.round()).abs() < 1e-6
            })
            .unwrap_or(3) as usize;
        let v = tick / unit;
        let sign = if v < 0.0 { "-" } else { "" };
        format!("{sign}₩{:.*}{suffix}", decimals, v.abs())
    }
}

/// The round step (1, 2, 2.5 or 5 times a power of ten) nearest above `raw`.
fn nice_step(raw: f64) -> f64 {
    if !(raw.is_finite() && raw > 0.0) {
        return 1.0;
    }
    let magnitude = 10f64.powf(raw.log10().floor());
    let fraction = raw / magnitude;
    let nice = if fraction <= 1.0 {
        1.0
    } else if fraction <= 2.0 {
        2.0
    } else if fraction <= 2.5 {
        2.5
    } else if fraction <= 5.0 {
        5.0
    } else {
        10.0
    };
    (nice * magnitude).max(1.0)
}

// ---------------------------------------------------------------------------------------------
// Counts per check and day

struct KindRow<'a> {
    kind: &'a str,
    description: &'a str,
    custom: bool,
    /// Whether a check of this kind ran (a kind can also come only from the rows).
    ran: bool,
    total: u64,
    /// Rows listed per business day.
    per_day: BTreeMap<NaiveDate, u64>,
    /// Rows listed in all.
    listed: u64,
}

struct CountTable<'a> {
    rows: Vec<KindRow<'a>>,
    /// The day columns.
    dates: Vec<NaiveDate>,
    /// All days of the report, when `dates` holds only those with discrepancies.
    all_days: usize,
    date_totals: BTreeMap<NaiveDate, u64>,
    grand_total: u64,
    max_cell: u64,
}

impl<'a> CountTable<'a> {
    fn new(r: &'a ReportData) -> CountTable<'a> {
        let mut rows: Vec<KindRow<'a>> = Vec::new();
        let mut index: HashMap<&str, usize> = HashMap::new();
        for check in &r.checks {
            match index.get(check.kind.as_str()) {
                Some(&i) => rows[i].total += check.count,
                None => {
                    index.insert(&check.kind, rows.len());
                    rows.push(KindRow {
                        kind: &check.kind,
                        description: &check.description,
                        custom: check.custom,
                        ran: true,
                        total: check.count,
                        per_day: BTreeMap::new(),
                        listed: 0,
                    });
                }
            }
        }
        let mut date_totals: BTreeMap<NaiveDate, u64> = BTreeMap::new();
        for d in &r.discrepancies {
            let i = *index.entry(&d.kind).or_insert_with(|| {
                rows.push(KindRow {
                    kind: &d.kind,
                    description: "",
                    custom: false,
                    ran: false,
                    total: 0,
                    per_day: BTreeMap::new(),
                    listed: 0,
                });
                rows.len() - 1
            });
            let row = &mut rows[i];
            *row.per_day.entry(d.business_date).or_default() += 1;
            row.listed += 1;
            if !row.ran {
                row.total += 1;
            }
            *date_totals.entry(d.business_date).or_default() += 1;
        }
        let all: BTreeSet<NaiveDate> = r
            .days
            .iter()
            .map(|d| d.date)
            .chain(date_totals.keys().copied())
            .collect();
        let all_days = all.len();
        let dates: Vec<NaiveDate> = if all_days <= MAX_ALL_DAY_COLUMNS {
            all.into_iter().collect()
        } else {
            date_totals.keys().copied().collect()
        };
        let grand_total = rows.iter().map(|k| k.total).sum();
        let max_cell = rows
            .iter()
            .flat_map(|k| k.per_day.values().copied())
            .max()
            .unwrap_or(0);
        CountTable {
            rows,
            dates,
            all_days,
            date_totals,
            grand_total,
            max_cell,
        }
    }
}

fn write_counts(out: &mut String, c: &CountTable) -> fmt::Result {
    out.push_str("<section class=\"card\" id=\"counts-section\">\n");
    out.push_str("<h2>Discrepancies per check and day</h2>\n");
    if c.dates.len() < c.all_days {
        writeln!(
            out,
            "<p class=\"note\">Columns show the {} of {} days with discrepancies.</p>",
            c.dates.len(),
            c.all_days
        )?;
    }
    out.push_str("<div class=\"scroll\">\n<table id=\"counts\" class=\"counts\">\n<thead>\n");
    if c.dates.is_empty() {
        out.push_str(
            "<tr><th class=\"kind\" scope=\"col\">Check</th><th class=\"num\" scope=\"col\">Total</th></tr>\n",
        );
    } else {
        // First header row: one cell per month, spanning its days.
        out.push_str("<tr><th class=\"kind\" rowspan=\"2\" scope=\"col\">Check</th>");
        let mut months: Vec<((i32, u32), usize)> = Vec::new();
        for d in &c.dates {
            let key = (d.year(), d.month());
            match months.last_mut() {
                Some((m, n)) if *m == key => *n += 1,
                _ => months.push((key, 1)),
            }
        }
        for ((year, month), span) in months {
            write!(
                out,
                "<th class=\"month\" colspan=\"{span}\" scope=\"colgroup\">{year}-{month:02}</th>"
            )?;
        }
        out.push_str("<th class=\"num\" rowspan=\"2\" scope=\"col\">Total</th></tr>\n<tr>");
        for d in &c.dates {
            write!(
                out,
                "<th class=\"day{}\" scope=\"col\" data-date=\"{d}\" title=\"{d} {}\">{}</th>",
                if is_weekend(*d) { " weekend" } else { "" },
                weekday(*d),
                d.day()
            )?;
        }
        out.push_str("</tr>\n");
    }
    out.push_str("</thead>\n<tbody>\n");
    if c.rows.is_empty() {
        writeln!(
            out,
            "<tr class=\"empty\"><td colspan=\"{}\">No checks ran.</td></tr>",
            c.dates.len() + 2
        )?;
    }
    for row in &c.rows {
        let kind = esc(row.kind);
        write!(
            out,
            "<tr data-kind=\"{kind}\"><th class=\"kind\" scope=\"row\"><code>{kind}</code>"
        )?;
        if row.custom {
            out.push_str(
                " <span class=\"badge\" title=\"A merchant's own SQL check\">custom</span>",
            );
        }
        if !row.ran {
            out.push_str(" <span class=\"badge warn\" title=\"Rows of this kind were listed, but no check of this kind is recorded\">no check</span>");
        }
        if !row.description.is_empty() {
            write!(out, "<div class=\"desc\">{}</div>", esc(row.description))?;
        }
        out.push_str("</th>");
        for d in &c.dates {
            let n = row.per_day.get(d).copied().unwrap_or(0);
            if n == 0 {
                write!(
                    out,
                    "<td class=\"c\" data-kind=\"{kind}\" data-date=\"{d}\" data-count=\"0\"></td>"
                )?;
            } else {
                write!(
                    out,
                    "<td class=\"c hit\" data-kind=\"{kind}\" data-date=\"{d}\" data-count=\"{n}\" \
                     style=\"background:rgba(209,67,52,{:.2})\" title=\"{kind} on {d}: {n}\">{}</td>",
                    heat(n, c.max_cell),
                    group(n)
                )?;
            }
        }
        let extra = if row.listed != row.total {
            format!(
                " title=\"{} counted, {} listed below\"",
                group(row.total),
                group(row.listed)
            )
        } else {
            String::new()
        };
        writeln!(
            out,
            "<td class=\"num total{}\" data-kind-total=\"{kind}\"{extra}>{}</td></tr>",
            if row.total == 0 { " zero" } else { " hit" },
            group(row.total)
        )?;
    }
    out.push_str("</tbody>\n<tfoot>\n<tr><th class=\"kind\" scope=\"row\">All checks</th>");
    for d in &c.dates {
        let n = c.date_totals.get(d).copied().unwrap_or(0);
        write!(
            out,
            "<td class=\"c\" data-date-total=\"{d}\">{}</td>",
            if n == 0 { String::new() } else { group(n) }
        )?;
    }
    writeln!(
        out,
        "<td class=\"num\" data-grand-total=\"{}\">{}</td></tr>",
        c.grand_total,
        group(c.grand_total)
    )?;
    out.push_str("</tfoot>\n</table>\n</div>\n");
    if c.grand_total > 0 {
        out.push_str(
            "<p class=\"note screen-only\">Click a count to list those discrepancies below.</p>\n",
        );
    }
    out.push_str("</section>\n");
    Ok(())
}

/// Background opacity of a count cell: darker for larger counts.
fn heat(n: u64, max: u64) -> f64 {
    if max == 0 {
        return 0.0;
    }
    0.10 + 0.42 * (n as f64 / max as f64)
}

// ---------------------------------------------------------------------------------------------
// Discrepancy rows

fn write_discrepancies(out: &mut String, r: &ReportData, c: &CountTable) -> fmt::Result {
    let total = r.discrepancies.len();
    out.push_str("<section class=\"card\" id=\"discrepancy-section\">\n");
    writeln!(
        out,
        "<h2>Discrepancies <span class=\"muted\">({})</span></h2>",
        group(total as u64)
    )?;
    out.push_str("<div class=\"filters\" id=\"filters\">\n");
    if total > 0 {
        out.push_str(
            "<label>Search <input type=\"search\" id=\"filter-text\" autocomplete=\"off\" \
             placeholder=\"Order id, key, amount, message…\"></label>\n",
        );
        out.push_str(
            "<label>Check <select id=\"filter-kind\"><option value=\"\">All checks</option>",
        );
        for row in c.rows.iter().filter(|k| k.listed > 0) {
            let kind = esc(row.kind);
            write!(
                out,
                "<option value=\"{kind}\">{kind} ({})</option>",
                group(row.listed)
            )?;
        }
        out.push_str("</select></label>\n");
        out.push_str("<label>Day <select id=\"filter-date\"><option value=\"\">All days</option>");
        for (d, n) in &c.date_totals {
            write!(out, "<option value=\"{d}\">{d} ({})</option>", group(*n))?;
        }
        out.push_str("</select></label>\n");
        out.push_str("<button type=\"button\" id=\"filter-reset\">Reset</button>\n");
    }
    writeln!(
        out,
        "<span id=\"shown-count\" data-shown=\"{total}\" data-total=\"{total}\">Showing {} of {}</span>",
        group(total as u64),
        group(total as u64)
    )?;
    out.push_str("</div>\n");
    out.push_str("<div class=\"scroll table-box\">\n<table id=\"discrepancies\" class=\"rows\">\n");
    out.push_str(
        "<thead><tr><th scope=\"col\">Check</th><th scope=\"col\">Business day</th>\
         <th scope=\"col\">Order id</th><th scope=\"col\">Payment key</th>\
         <th scope=\"col\">Transaction key</th><th scope=\"col\">Expected</th>\
         <th scope=\"col\">Actual</th><th scope=\"col\">Message</th></tr></thead>\n",
    );
    if total == 0 {
        out.push_str(
            "<tbody><tr class=\"empty\"><td colspan=\"8\" id=\"no-discrepancies\">No discrepancies</td></tr></tbody>\n",
        );
    } else {
        out.push_str("<tbody id=\"discrepancy-rows\">\n");
        for d in &r.discrepancies {
            let kind = esc(&d.kind);
            writeln!(
                out,
                "<tr data-kind=\"{kind}\" data-date=\"{date}\"><td><code>{kind}</code></td>\
                 <td class=\"date\">{date}</td><td class=\"key\">{}</td><td class=\"key\">{}</td>\
                 <td class=\"key\">{}</td><td class=\"val\">{}</td><td class=\"val\">{}</td>\
                 <td class=\"msg\">{}</td></tr>",
                opt(&d.order_id),
                opt(&d.payment_key),
                opt(&d.transaction_key),
                opt(&d.expected),
                opt(&d.actual),
                esc(&d.message),
                date = d.business_date,
            )?;
        }
        out.push_str("</tbody>\n");
        out.push_str(
            "<tbody id=\"no-match\" hidden><tr class=\"empty\"><td colspan=\"8\">No discrepancy matches the filters.</td></tr></tbody>\n",
        );
    }
    out.push_str("</table>\n</div>\n</section>\n");
    Ok(())
}

fn opt(value: &Option<String>) -> String {
    value.as_deref().map(esc).unwrap_or_default()
}

// ---------------------------------------------------------------------------------------------
// Per-day totals

fn write_days(out: &mut String, days: &[DayTotals]) -> fmt::Result {
    out.push_str("<section class=\"card\" id=\"days-section\">\n<h2>Totals per day</h2>\n");
    out.push_str("<div class=\"scroll\">\n<table id=\"days\" class=\"rows\">\n");
    out.push_str(
        "<thead><tr><th scope=\"col\">Date</th><th class=\"num\" scope=\"col\">Approved</th>\
         <th class=\"num\" scope=\"col\">Cancelled</th><th class=\"num\" scope=\"col\">Net sales (₩)</th>\
         <th class=\"num\" scope=\"col\">Fees (₩)</th><th class=\"num\" scope=\"col\">Settled (₩)</th>\
         <th class=\"num\" scope=\"col\">Paid out (₩)</th></tr></thead>\n<tbody>\n",
    );
    if days.is_empty() {
        out.push_str("<tr class=\"empty\"><td colspan=\"7\">No days in the period.</td></tr>\n");
    }
    for d in days {
        write!(
            out,
            "<tr data-date=\"{}\"><td class=\"date{}\">{} <span class=\"wd\">{}</span></td>",
            d.date,
            if is_weekend(d.date) { " weekend" } else { "" },
            d.date,
            weekday(d.date)
        )?;
        write_count_cell(out, "approved_count", d.approved_count)?;
        write_count_cell(out, "cancelled_count", d.cancelled_count)?;
        write_amount_cell(out, "net_sales", d.net_sales)?;
        write_amount_cell(out, "fees", d.fees)?;
        write_amount_cell(out, "settled", d.settled)?;
        write_amount_cell(out, "paid_out", d.paid_out)?;
        out.push_str("</tr>\n");
    }
    out.push_str("</tbody>\n");
    if !days.is_empty() {
        out.push_str("<tfoot><tr data-date=\"total\"><th scope=\"row\">Total</th>");
        write_count_cell(
            out,
            "approved_count",
            days.iter().map(|d| d.approved_count).sum(),
        )?;
        write_count_cell(
            out,
            "cancelled_count",
            days.iter().map(|d| d.cancelled_count).sum(),
        )?;
        write_amount_cell(out, "net_sales", days.iter().map(|d| d.net_sales).sum())?;
        write_amount_cell(out, "fees", days.iter().map(|d| d.fees).sum())?;
        write_amount_cell(out, "settled", days.iter().map(|d| d.settled).sum())?;
        write_amount_cell(out, "paid_out", days.iter().map(|d| d.paid_out).sum())?;
        out.push_str("</tr></tfoot>\n");
    }
    out.push_str("</table>\n</div>\n</section>\n");
    Ok(())
}

fn write_count_cell(out: &mut String, field: &str, n: u64) -> fmt::Result {
    write!(
        out,
        "<td class=\"num\" data-field=\"{field}\" data-value=\"{n}\">{}</td>",
        group(n)
    )
}

fn write_amount_cell(out: &mut String, field: &str, v: f64) -> fmt::Result {
    write!(
        out,
        "<td class=\"num{}\" data-field=\"{field}\" data-value=\"{}\">{}</td>",
        if v < 0.0 { " neg" } else { "" },
        num_attr(v),
        amount(v)
    )
}

// ---------------------------------------------------------------------------------------------
// Text and number formatting

/// `text` with the five characters that matter in HTML text and attribute values escaped.
fn esc(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for ch in text.chars() {
        match ch {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            _ => out.push(ch),
        }
    }
    out
}

/// An integer with thousands separators: `1234567` → `1,234,567`.
fn group(n: u64) -> String {
    group_digits(&n.to_string())
}

fn group_digits(digits: &str) -> String {
    let len = digits.len();
    let mut out = String::with_capacity(len + len / 3);
    for (i, ch) in digits.chars().enumerate() {
        if i > 0 && (len - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}

/// An amount with thousands separators, without currency sign: whole won as an integer
/// (`-1,234,000`), a fraction with two decimals (`1,234.50`).
fn amount(v: f64) -> String {
    if !v.is_finite() {
        return v.to_string();
    }
    let sign = if v < 0.0 && v.abs() >= 0.005 { "-" } else { "" };
    let abs = v.abs();
    if (abs - abs.round()).abs() < 1e-9 {
        format!("{sign}{}", group_digits(&format!("{abs:.0}")))
    } else {
        let text = format!("{abs:.2}");
        let (whole, fraction) = text.split_once('.').unwrap_or((&text, "00"));
        format!("{sign}{}.{fraction}", group_digits(whole))
    }
}

/// An amount in won: `₩1,234,000`, `-₩5,000`.
fn won(v: f64) -> String {
    let text = amount(v);
    match text.strip_prefix('-') {
        Some(rest) => format!("-₩{rest}"),
        None => format!("₩{text}"),
    }
}

/// The exact value for a `data-value` attribute: Rust's shortest form that reads back to the
/// same `f64` (`1234000`, `-0.5`).
fn num_attr(v: f64) -> String {
    v.to_string()
}

fn neg_class(v: f64) -> &'static str {
    if v < 0.0 { " class=\"neg\"" } else { "" }
}

/// NaN and infinities drawn as 0, so no coordinate is ever NaN.
fn finite(v: f64) -> f64 {
    if v.is_finite() { v } else { 0.0 }
}

fn weekday(d: NaiveDate) -> &'static str {
    match d.weekday() {
        Weekday::Mon => "Mon",
        Weekday::Tue => "Tue",
        Weekday::Wed => "Wed",
        Weekday::Thu => "Thu",
        Weekday::Fri => "Fri",
        Weekday::Sat => "Sat",
        Weekday::Sun => "Sun",
    }
}

fn is_weekend(d: NaiveDate) -> bool {
    matches!(d.weekday(), Weekday::Sat | Weekday::Sun)
}

// ---------------------------------------------------------------------------------------------
// Style and script

const CSS: &str = r#":root {
  --fg: #1f2933; --muted: #616e7c; --line: #dde3ea; --soft: #f4f6f8; --head: #f8fafc;
  --ok: #1d7a4a; --ok-bg: #e8f5ee; --bad: #b42318; --bad-bg: #fdecea;
  --net: #b8c7d9; --settled: #2563eb; --paid: #d97706;
  --sans: -apple-system, BlinkMacSystemFont, "Segoe UI", Roboto, "Apple SD Gothic Neo",
    "Malgun Gothic", "Noto Sans KR", "NanumGothic", "Helvetica Neue", Arial, sans-serif;
  --mono: ui-monospace, SFMono-Regular, Menlo, Consolas, "D2Coding", "NanumGothicCoding",
    "DejaVu Sans Mono", monospace;
}
* { box-sizing: border-box; }
html { -webkit-text-size-adjust: 100%; }
body { margin: 0; background: var(--soft); color: var(--fg); font: 14px/1.5 var(--sans);
  font-variant-numeric: tabular-nums; }
main { max-width: 1240px; margin: 0 auto; padding: 24px; }
.card { background: #fff; border: 1px solid var(--line); border-radius: 8px; padding: 20px 24px;
  margin: 0 0 20px; }
h1 { font-size: 26px; line-height: 1.25; margin: 2px 0 8px; word-break: break-word; }
h2 { font-size: 16px; margin: 0 0 12px; }
code, .key, .val { font-family: var(--mono); font-size: 12.5px; }
.muted, .note { color: var(--muted); }
.note { font-size: 12.5px; margin: 10px 0 0; }
.eyebrow { text-transform: uppercase; letter-spacing: .08em; font-size: 12px; font-weight: 600;
  color: var(--muted); }
.top { display: grid; grid-template-columns: 1fr auto; gap: 4px 24px; align-items: start; }
.top .inputs, .top .summary { grid-column: 1 / -1; }
.meta { display: flex; flex-wrap: wrap; gap: 4px 20px; color: var(--muted); }
.meta b { color: var(--fg); font-weight: 600; }
.verdict { font-size: 26px; font-weight: 700; padding: 12px 22px; border-radius: 8px;
  white-space: nowrap; align-self: center; }
.verdict .mark { display: inline-block; width: 1.3em; height: 1.3em; line-height: 1.3em;
  text-align: center; border-radius: 50%; color: #fff; font-size: .8em; margin-right: 6px;
  vertical-align: .08em; }
.verdict.ok { color: var(--ok); background: var(--ok-bg); }
.verdict.ok .mark { background: var(--ok); }
.verdict.bad { color: var(--bad); background: var(--bad-bg); }
.verdict.bad .mark { background: var(--bad); }
.inputs { margin-top: 14px; }
.inputs h2 { font-size: 13px; color: var(--muted); margin: 0 0 4px; font-weight: 600; }
#inputs { width: auto; }
#inputs th { font-weight: 600; padding: 3px 16px 3px 0; border: 0; }
#inputs td { padding: 3px 0; border: 0; word-break: break-all; }
.summary { display: flex; flex-wrap: wrap; gap: 12px; margin: 16px 0 0; }
.summary div { flex: 1 1 150px; border: 1px solid var(--line); border-radius: 6px;
  padding: 8px 12px; background: var(--head); }
.summary dt { font-size: 12px; color: var(--muted); }
.summary dd { margin: 0; font-size: 18px; font-weight: 600; white-space: nowrap; }
.neg { color: var(--bad); }
table { border-collapse: collapse; width: 100%; }
th, td { padding: 6px 8px; border-bottom: 1px solid var(--line); text-align: left;
  vertical-align: top; }
thead th { font-size: 12px; font-weight: 600; color: var(--muted); background: var(--head);
  white-space: nowrap; }
tfoot th, tfoot td { font-weight: 600; border-top: 2px solid var(--line); border-bottom: 0; }
.num { text-align: right; white-space: nowrap; }
.scroll { overflow-x: auto; }
.empty td { text-align: center; color: var(--muted); padding: 18px; }
.badge { display: inline-block; font-size: 11px; font-weight: 600; line-height: 1.5;
  padding: 0 6px; border-radius: 9px; background: #e6effc; color: #1d4ed8; vertical-align: 1px; }
.badge.warn { background: #fff4e5; color: #9a5b00; }
.chart { display: block; width: 100%; height: auto; font-family: var(--sans); }
.chart text { font-size: 12px; fill: var(--muted); }
.chart .legend text { fill: var(--fg); }
.chart .grid { stroke: #e8ecf1; stroke-width: 1; }
.chart .zero, .chart .axis { stroke: #9aa5b1; stroke-width: 1; }
.chart .bar-net { fill: var(--net); }
.chart .line-settled, .chart .line-paid { fill: none; stroke-width: 2; stroke-linejoin: round; }
.chart .line-settled { stroke: var(--settled); }
.chart .line-paid { stroke: var(--paid); stroke-dasharray: 6 3; }
.chart .dot-settled { fill: var(--settled); }
.chart .dot-paid { fill: var(--paid); }
.chart .empty { font-size: 14px; }
.counts th.kind { min-width: 230px; max-width: 320px; white-space: normal; font-weight: 400; }
.counts th.kind code { font-weight: 600; color: var(--fg); }
.counts .desc { font-size: 12px; color: var(--muted); line-height: 1.35; margin-top: 2px; }
.counts th.month { text-align: center; border-bottom: 0; }
.counts th.day { text-align: center; padding: 4px 2px; min-width: 26px; }
.counts th.weekend { color: #9aa5b1; }
.counts td.c { text-align: center; padding: 6px 2px; min-width: 26px; font-size: 12.5px;
  vertical-align: middle; border-left: 1px solid #f0f3f6; }
.counts td.hit { cursor: pointer; font-weight: 600; }
.counts td.hit:hover, .counts td.total.hit:hover { outline: 2px solid var(--fg); outline-offset: -2px; }
.counts td.total { vertical-align: middle; font-weight: 600; border-left: 1px solid var(--line); }
.counts td.total.hit { color: var(--bad); cursor: pointer; }
.counts td.total.zero { color: var(--ok); }
.counts tbody tr:hover { background: #fafbfc; }
.filters { display: flex; flex-wrap: wrap; align-items: center; gap: 8px 16px; margin: 0 0 12px; }
.filters label { display: flex; align-items: center; gap: 6px; font-size: 13px; color: var(--muted); }
.filters input, .filters select, .filters button { font: inherit; font-size: 13px; color: var(--fg);
  border: 1px solid #c7d0da; border-radius: 6px; padding: 5px 8px; background: #fff; }
.filters input { width: 260px; }
.filters select { max-width: 280px; }
.filters button { cursor: pointer; background: var(--head); }
#shown-count { margin-left: auto; font-size: 13px; color: var(--muted); }
#shown-count:first-child { margin-left: 0; }
.table-box { max-height: 760px; overflow: auto; border: 1px solid var(--line); border-radius: 6px; }
.table-box thead th { position: sticky; top: 0; z-index: 1; box-shadow: 0 1px 0 var(--line); }
.rows tbody tr:nth-child(even) { background: #fafbfc; }
#discrepancies td { font-size: 13px; }
#discrepancies td.key { max-width: 190px; overflow-wrap: anywhere; }
#discrepancies td.val { white-space: nowrap; }
#discrepancies td.msg { min-width: 240px; }
#discrepancies td.date, #days td.date { white-space: nowrap; }
.wd { color: var(--muted); font-size: 12px; }
.weekend .wd { color: #c2410c; }
footer { color: var(--muted); font-size: 12px; text-align: center; padding: 4px 0 16px; }
@media print {
  @page { margin: 12mm; }
  * { -webkit-print-color-adjust: exact; print-color-adjust: exact; }
  body { background: #fff; font-size: 11px; }
  main { max-width: none; padding: 0; }
  .card { border: 0; padding: 0; margin: 0 0 16px; }
  .filters label, .filters button, .screen-only { display: none; }
  .scroll, .table-box { overflow: visible; max-height: none; border: 0; }
  .table-box thead th { position: static; box-shadow: none; }
  thead { display: table-header-group; }
  tr, .summary div { break-inside: avoid; }
  h2 { break-after: avoid; }
}
"#;

const SCRIPT: &str = r#"(function () {
  "use strict";
  var body = document.getElementById("discrepancy-rows");
  var text = document.getElementById("filter-text");
  var kind = document.getElementById("filter-kind");
  var day = document.getElementById("filter-date");
  var reset = document.getElementById("filter-reset");
  var counter = document.getElementById("shown-count");
  var noMatch = document.getElementById("no-match");
  if (!body || !text || !kind || !day || !counter) {
    return;
  }
  var rows = body.rows;
  var haystacks = null;
  function cellsText(row) {
    var parts = [];
    for (var c = 0; c < row.cells.length; c++) {
      parts.push(row.cells[c].textContent);
    }
    return parts.join("\n").toLowerCase();
  }
  function apply() {
    if (haystacks === null) {
      haystacks = new Array(rows.length);
      for (var h = 0; h < rows.length; h++) {
        haystacks[h] = cellsText(rows[h]);
      }
    }
    var q = text.value.trim().toLowerCase();
    var k = kind.value;
    var d = day.value;
    var shown = 0;
    for (var i = 0; i < rows.length; i++) {
      var row = rows[i];
      var ok = (k === "" || row.getAttribute("data-kind") === k) &&
        (d === "" || row.getAttribute("data-date") === d) &&
        (q === "" || haystacks[i].indexOf(q) !== -1);
      if (row.hidden === ok) {
        row.hidden = !ok;
      }
      if (ok) {
        shown++;
      }
    }
    counter.setAttribute("data-shown", String(shown));
    counter.textContent = "Showing " + shown.toLocaleString("en-US") + " of " +
      rows.length.toLocaleString("en-US");
    if (noMatch) {
      noMatch.hidden = shown !== 0;
    }
  }
  function choose(select, value) {
    for (var o = 0; o < select.options.length; o++) {
      if (select.options[o].value === value) {
        select.selectedIndex = o;
        return;
      }
    }
    select.selectedIndex = 0;
  }
  text.addEventListener("input", apply);
  kind.addEventListener("change", apply);
  day.addEventListener("change", apply);
  if (reset) {
    reset.addEventListener("click", function () {
      text.value = "";
      kind.selectedIndex = 0;
      day.selectedIndex = 0;
      apply();
    });
  }
  var counts = document.getElementById("counts");
  if (counts) {
    counts.addEventListener("click", function (event) {
      var target = event.target;
      var cell = target && target.closest ? target.closest("td[data-count], td[data-kind-total]") : null;
      if (!cell || !cell.classList.contains("hit")) {
        return;
      }
      text.value = "";
      choose(kind, cell.getAttribute("data-kind") || cell.getAttribute("data-kind-total") || "");
      choose(day, cell.getAttribute("data-date") || "");
      apply();
      var section = document.getElementById("discrepancy-section");
      if (section && section.scrollIntoView) {
        section.scrollIntoView({ behavior: "smooth", block: "start" });
      }
    });
  }
  if (text.value !== "" || kind.selectedIndex > 0 || day.selectedIndex > 0) {
    apply();
  }
})();
"#;

#[cfg(test)]
mod tests {
    use super::*;

    fn date(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    fn day(d: &str, net: f64, settled: f64, paid: f64) -> DayTotals {
        DayTotals {
            date: date(d),
            net_sales: net,
            settled,
            paid_out: paid,
            fees: 0.0,
            approved_count: 0,
            cancelled_count: 0,
        }
    }

    fn check(kind: &str, count: u64, custom: bool) -> CheckCount {
        CheckCount {
            kind: kind.to_owned(),
            description: format!("Description of {kind}."),
            custom,
            count,
        }
    }

    fn row(kind: &str, d: &str, order_id: &str, message: &str) -> DiscrepancyRow {
        DiscrepancyRow {
            kind: kind.to_owned(),
            business_date: date(d),
            order_id: Some(order_id.to_owned()),
            payment_key: None,
            transaction_key: Some("tx-1".to_owned()),
            expected: Some("10000".to_owned()),
            actual: None,
            message: message.to_owned(),
        }
    }

    fn report(
        days: Vec<DayTotals>,
        checks: Vec<CheckCount>,
        rows: Vec<DiscrepancyRow>,
    ) -> ReportData {
        let from = days.first().map_or(date("2026-11-01"), |d| d.date);
        let to = days.last().map_or(date("2026-11-01"), |d| d.date);
        ReportData {
            name: "toss-vs-bank".to_owned(),
            from,
            to,
            generated_at: "2026-12-02 09:14:03 KST".to_owned(),
            inputs: vec![("toss".to_owned(), "inbox/toss.csv".to_owned())],
            days,
            checks,
            discrepancies: rows,
        }
    }

    /// Every value of attribute `name` in `html`, in document order.
    fn attrs<'a>(html: &'a str, name: &str) -> Vec<&'a str> {
        let needle = format!(" {name}=\"");
        html.match_indices(&needle)
            .map(|(at, _)| {
                let rest = &html[at + needle.len()..];
                &rest[..rest.find('"').unwrap()]
            })
            .collect()
    }

    /// The opening tags (`<tag ...>`) that carry `attr="value"`.
    fn tags_with<'a>(html: &'a str, attr: &str, value: &str) -> Vec<&'a str> {
        let needle = format!(" {attr}=\"{value}\"");
        html.match_indices(&needle)
            .map(|(at, _)| {
                let start = html[..at].rfind('<').unwrap();
                let end = at + html[at..].find('>').unwrap();
                &html[start..=end]
            })
            .collect()
    }

    fn attr_of<'a>(tag: &'a str, name: &str) -> Option<&'a str> {
        let needle = format!(" {name}=\"");
        let at = tag.find(&needle)? + needle.len();
        Some(&tag[at..at + tag[at..].find('"')?])
    }

    fn thirty_one_days() -> Vec<DayTotals> {
        (1..=31)
            .map(|i| {
                let d = format!("2026-10-{i:02}");
                day(
                    &d,
                    1_000_000.0 * i as f64 + 0.5,
                    990_000.0 * i as f64,
                    if i % 7 == 0 { 5_000_000.0 } else { 0.0 },
                )
            })
            .collect()
    }

    #[test]
    fn escapes_text_and_attributes() {
        assert_eq!(
            esc(r#"<script>alert("x&y")</script>'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt;&#39;"
        );
        assert_eq!(esc("정산 누락"), "정산 누락");
        let mut hostile = row(
            "kind\"><b>",
            "2026-11-01",
            "<script>alert(1)</script>",
            "<img src=x onerror=alert(2)>",
        );
        hostile.payment_key = Some("a&b".to_owned());
        let mut r = report(
            vec![day("2026-11-01", 1.0, 1.0, 1.0)],
            vec![check("kind\"><b>", 1, true)],
            vec![hostile],
        );
        r.name = "<i>name</i>".to_owned();
        r.inputs = vec![("<in>".to_owned(), "/p/\"q\"".to_owned())];
        r.generated_at = "<now>".to_owned();
        let html = render(&r);
        assert!(
            !html.contains("<script>alert"),
            "order id rendered as markup"
        );
        assert!(html.contains("&lt;script&gt;alert(1)&lt;/script&gt;"));
        assert!(!html.contains("<img src=x"));
        assert!(!html.contains("<i>name</i>"));
        assert!(!html.contains("<b>"));
        assert!(!html.contains("<in>") && !html.contains("<now>"));
        assert!(html.contains("a&amp;b"));
        assert!(html.contains("data-kind=\"kind&quot;&gt;&lt;b&gt;\""));
        // The only script element is the page's own.
        assert_eq!(html.matches("<script").count(), 1);
    }

    #[test]
    fn formats_numbers() {
        assert_eq!(group(0), "0");
        assert_eq!(group(999), "999");
        assert_eq!(group(1_000), "1,000");
        assert_eq!(group(1_234_567), "1,234,567");
        assert_eq!(group(u64::MAX), "18,446,744,073,709,551,615");
        assert_eq!(amount(0.0), "0");
        assert_eq!(amount(-0.0), "0");
        assert_eq!(amount(1_234_000.0), "1,234,000");
        assert_eq!(amount(-1_234_000.0), "-1,234,000");
        assert_eq!(amount(1234.5), "1,234.50");
        assert_eq!(amount(-0.25), "-0.25");
        assert_eq!(amount(100.0), "100");
        assert_eq!(won(1_234_000.0), "₩1,234,000");
        assert_eq!(won(-5_000.0), "-₩5,000");
        assert_eq!(num_attr(1_234_000.0), "1234000");
        assert_eq!(num_attr(0.1), "0.1");
        assert_eq!(num_attr(-12.5), "-12.5");
        assert_eq!(nice_step(0.0), 1.0);
        assert_eq!(nice_step(f64::NAN), 1.0);
        assert_eq!(nice_step(1_234_000.0), 2_000_000.0);
        assert_eq!(nice_step(2_400.0), 2_500.0);
        let axis = Axis::new(0.0, 31_000_000.0);
        assert_eq!(axis.ticks().last().copied(), Some(40_000_000.0));
        assert_eq!(axis.label(10_000_000.0), "₩10M");
        assert_eq!(Axis::new(0.0, 1_200_000.0).label(250_000.0), "₩0.25M");
        assert_eq!(Axis::new(0.0, 300_000.0).label(100_000.0), "₩100K");
        assert_eq!(Axis::new(0.0, 9_000.0).label(2_000.0), "₩2,000");
        assert_eq!(Axis::new(-3_000_000.0, 0.0).label(-1_000_000.0), "-₩1M");
        assert_eq!(Axis::new(0.0, 4e9).label(2e9), "₩2B");
    }

    #[test]
    fn empty_report_renders() {
        let r = report(Vec::new(), Vec::new(), Vec::new());
        let html = render(&r);
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("<meta charset=\"utf-8\">"));
        assert!(html.contains("id=\"daily-chart\""));
        assert!(html.contains("id=\"counts\""));
        assert!(html.contains("id=\"discrepancies\""));
        assert!(html.contains("id=\"days\""));
        assert!(html.contains("No discrepancies"));
        assert!(html.contains("data-discrepancies=\"0\""));
        assert!(html.contains("Balanced"));
        assert!(html.contains("id=\"shown-count\" data-shown=\"0\" data-total=\"0\""));
        assert!(!html.contains("NaN") && !html.contains("inf"));
        assert!(attrs(&html, "data-series").is_empty());
    }

    #[test]
    fn balanced_report_with_checks_lists_each_check() {
        let r = report(
            vec![day("2026-11-01", 0.0, 0.0, 0.0)],
            vec![check("a", 0, false), check("b", 0, true)],
            Vec::new(),
        );
        let html = render(&r);
        assert!(html.contains("Balanced"));
        assert_eq!(attrs(&html, "data-kind-total"), vec!["a", "b"]);
        assert_eq!(html.matches(">custom</span>").count(), 1);
        assert!(html.contains("No discrepancies"));
    }

    #[test]
    fn one_day_chart() {
        let r = report(
            vec![day("2026-11-05", 1_500_000.0, 1_480_000.0, 0.0)],
            Vec::new(),
            Vec::new(),
        );
        let html = render(&r);
        assert!(!html.contains("NaN") && !html.contains("inf"));
        let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
        assert_eq!(
            attrs(svg, "data-series"),
            vec!["net_sales", "settled", "paid_out"]
        );
        assert_eq!(attrs(svg, "data-value"), vec!["1500000", "1480000", "0"]);
        // One day has no line to draw, only its points.
        assert!(!html.contains("<polyline"));
        // The point sits in the middle of the plot.
        let dot = tags_with(&html, "data-series", "settled")[0];
        let cx: f64 = attr_of(dot, "cx").unwrap().parse().unwrap();
        let middle = PLOT_LEFT + (CHART_W - PLOT_LEFT - PLOT_RIGHT) / 2.0;
        assert!((cx - middle).abs() < 0.1, "{cx} vs {middle}");
    }

    #[test]
    fn all_zero_and_negative_charts_have_no_nan() {
        for days in [
            vec![
                day("2026-11-01", 0.0, 0.0, 0.0),
                day("2026-11-02", 0.0, 0.0, 0.0),
            ],
            vec![
                day("2026-11-01", -50_000.0, 0.0, 0.0),
                day("2026-11-02", -1.0, -2.0, -3.0),
            ],
            vec![day("2026-11-01", f64::NAN, f64::INFINITY, 1.0)],
            vec![day("2026-11-01", 1e300, -1e300, 0.0)],
            thirty_one_days(),
        ] {
            let html = render(&report(days, Vec::new(), Vec::new()));
            let svg = &html[html.find("<svg").unwrap()..html.find("</svg>").unwrap()];
            for name in [
                "x", "y", "x1", "x2", "y1", "y2", "cx", "cy", "width", "height",
            ] {
                for value in attrs(svg, name) {
                    let v: f64 = value.parse().unwrap();
                    assert!(v.is_finite(), "{name}={value}");
                    if name == "width" || name == "height" {
                        assert!(v >= 0.0, "{name}={value}");
                    }
                }
            }
            for points in attrs(svg, "points") {
                for v in points.split([' ', ',']) {
                    assert!(v.parse::<f64>().unwrap().is_finite(), "{points}");
                }
            }
            for tick in attrs(svg, "data-tick") {
                assert!(tick.parse::<f64>().unwrap().is_finite(), "{tick}");
            }
        }
        let html = render(&report(
            vec![day("2026-11-01", -50_000.0, 10_000.0, 0.0)],
            Vec::new(),
            Vec::new(),
        ));
        let ticks: Vec<f64> = attrs(&html, "data-tick")
            .iter()
            .map(|t| t.parse().unwrap())
            .collect();
        assert!(ticks.contains(&0.0), "{ticks:?}");
        assert!(
            ticks[0] <= -50_000.0 && ticks[ticks.len() - 1] >= 10_000.0,
            "{ticks:?}"
        );
    }

    #[test]
    fn data_attributes_match_the_inputs() {
        let days = thirty_one_days();
        let checks = vec![
            check("settlement_missing", 3, false),
            check("amount_mismatch", 1, false),
            check("never_found", 0, false),
            check("merchant_sql", 2, true),
        ];
        let rows = vec![
            row("settlement_missing", "2026-10-03", "o1", "정산 누락"),
            row("settlement_missing", "2026-10-03", "o2", "정산 누락"),
            row("settlement_missing", "2026-10-20", "o3", "정산 누락"),
            row("amount_mismatch", "2026-10-03", "o4", "금액 불일치"),
            row("merchant_sql", "2026-10-31", "o5", "custom"),
            row("merchant_sql", "2026-10-31", "o6", "custom"),
        ];
        let r = report(days, checks, rows);
        let html = render(&r);

        // Chart: three points per day with the exact values.
        let series = attrs(&html, "data-series");
        assert_eq!(series.len(), 93);
        for d in &r.days {
            let date = d.date.to_string();
            for (name, value) in [
                ("net_sales", d.net_sales),
                ("settled", d.settled),
                ("paid_out", d.paid_out),
            ] {
                let point = tags_with(&html, "data-series", name)
                    .into_iter()
                    .find(|t| attr_of(t, "data-date") == Some(&date))
                    .unwrap_or_else(|| panic!("no {name} point on {date}"));
                let read: f64 = attr_of(point, "data-value").unwrap().parse().unwrap();
                assert_eq!(read, value);
            }
        }

        // Counts table: every check, every day of a 31-day period, counts per cell.
        assert_eq!(
            attrs(&html, "data-kind-total"),
            vec![
                "settlement_missing",
                "amount_mismatch",
                "never_found",
                "merchant_sql"
            ]
        );
        assert_eq!(attrs(&html, "data-count").len(), 4 * 31);
        let cell = |kind: &str, date: &str| {
            tags_with(&html, "data-date", date)
                .into_iter()
                .find(|t| t.starts_with("<td") && attr_of(t, "data-kind") == Some(kind))
                .and_then(|t| attr_of(t, "data-count"))
                .unwrap()
        };
        assert_eq!(cell("settlement_missing", "2026-10-03"), "2");
        assert_eq!(cell("settlement_missing", "2026-10-20"), "1");
        assert_eq!(cell("amount_mismatch", "2026-10-03"), "1");
        assert_eq!(cell("never_found", "2026-10-03"), "0");
        assert_eq!(cell("merchant_sql", "2026-10-31"), "2");
        assert!(html.contains("data-kind-total=\"settlement_missing\">3<"));
        assert!(html.contains("data-date-total=\"2026-10-03\">3<"));
        assert!(html.contains("data-grand-total=\"6\""));
        assert!(html.contains("data-discrepancies=\"6\""));
        assert!(html.contains("6 discrepancies"));

        // Discrepancy rows, in order.
        let row_tags: Vec<&str> = tags_with(&html, "data-kind", "settlement_missing")
            .into_iter()
            .filter(|t| t.starts_with("<tr") && t.contains("data-date"))
            .collect();
        assert_eq!(row_tags.len(), 3);
        assert!(html.contains("<td class=\"msg\">정산 누락</td>"));
        assert!(html.contains("data-shown=\"6\" data-total=\"6\""));
        assert!(html.contains("<option value=\"merchant_sql\">merchant_sql (2)</option>"));
        assert!(!html.contains("<option value=\"never_found\""));

        // Per-day table.
        let day_cell = tags_with(&html, "data-value", "3000000.5");
        assert_eq!(day_cell.len(), 2, "chart point and table cell");
        assert!(
            html.contains("data-field=\"net_sales\" data-value=\"3000000.5\">3,000,000.50</td>")
        );
    }

    #[test]
    fn long_period_shows_only_days_with_discrepancies() {
        let days: Vec<DayTotals> = (0..60)
            .map(|i| {
                let d = date("2026-09-01") + chrono::Duration::days(i);
                day(&d.to_string(), 1.0, 1.0, 1.0)
            })
            .collect();
        let r = report(
            days,
            vec![check("a", 2, false)],
            vec![
                row("a", "2026-09-05", "o", "m"),
                row("a", "2026-10-10", "o", "m"),
            ],
        );
        let html = render(&r);
        assert_eq!(attrs(&html, "data-count"), vec!["1", "1"]);
        assert!(html.contains("2 of 60 days"));
        assert!(html.contains(">2026-09</th>") && html.contains(">2026-10</th>"));
    }

    #[test]
    fn rows_without_a_check_still_count() {
        let r = report(
            vec![day("2026-11-01", 1.0, 1.0, 1.0)],
            Vec::new(),
            vec![row("orphan", "2026-11-01", "o", "m")],
        );
        let html = render(&r);
        assert_eq!(attrs(&html, "data-kind-total"), vec!["orphan"]);
        assert!(html.contains("1 discrepancy<"));
        assert!(html.contains(">no check</span>"));
    }
}
