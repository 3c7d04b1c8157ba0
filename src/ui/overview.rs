//! The overview, the UI's landing page: events in, deliveries by outcome and the
//! acknowledgement-to-delivery latency (p50, p99) over the last hour or day, and the targets
//! that fail most, drawn as SVG on the server from the per-minute counts
//! (`store::stats`: a page reads rows per minute, never per event). The charts refresh in
//! place: `app.js` fetches [`charts`] (the same fragment) every few seconds.
//!
//! Hand-written SVG: three kinds of marks (bars, stacked bars, lines) on fixed axes need no
//! chart library, and the page keeps its CSP (no script or style inline, nothing from a CDN).

use std::fmt::Write as _;

use askama::Template;
use axum::Extension;
use axum::extract::{Query, State};
use serde::Deserialize;
use time::OffsetDateTime;

use super::Session;
use super::page::{Chrome, Page, chrome, render};
use crate::metrics::LATENCY_BUCKETS;
use crate::state::AppState;
use crate::store::stats::{self, Bucket, FailingTarget};

/// A chart window: its key in the URL, its label, its bucket length and how many buckets.
const RANGES: [(&str, &str, i64, i64); 2] = [
    ("1h", "last hour", 60, 60),
    ("24h", "last 24 hours", 900, 96),
];

#[derive(Debug, Default, Deserialize)]
pub struct OverviewQuery {
    #[serde(default)]
    range: String,
}

#[derive(Template)]
#[template(path = "charts.html")]
struct Charts {
    range: &'static str,
    label: &'static str,
    events: i64,
    delivered: i64,
    retried: i64,
    dead: i64,
    /// The window's p50 and p99 as text ("—" with no deliveries).
    p50: String,
    p99: String,
    events_svg: String,
    outcomes_svg: String,
    latency_svg: String,
    failing: Vec<FailingTarget>,
}

#[derive(Template)]
#[template(path = "overview.html")]
struct OverviewPage {
    chrome: Chrome,
    range: &'static str,
    ranges: Vec<(&'static str, &'static str)>,
    charts: String,
}

fn range_of(key: &str) -> (&'static str, &'static str, i64, i64) {
    RANGES
        .iter()
        .copied()
        .find(|(k, ..)| *k == key)
        .unwrap_or(RANGES[0])
}

pub async fn page(
    State(state): State<AppState>,
    Extension(session): Extension<Session>,
    Query(query): Query<OverviewQuery>,
) -> Page {
    let chrome = chrome(&state, &session, "overview").await?;
    let charts = build(&state, &query.range).await?;
    render(&OverviewPage {
        chrome,
        range: charts.range,
        ranges: RANGES.iter().map(|(k, l, ..)| (*k, *l)).collect(),
        charts: charts.render().map_err(|_| super::page::unavailable())?,
    })
}

/// The charts alone, for the page's refresh.
pub async fn charts(State(state): State<AppState>, Query(query): Query<OverviewQuery>) -> Page {
    render(&build(&state, &query.range).await?)
}

async fn build(state: &AppState, range: &str) -> Result<Charts, super::page::PageError> {
    let (range, label, step, count) = range_of(range);
    let now = OffsetDateTime::now_utc().unix_timestamp();
    // Buckets end with the current one.
    let first = (now.div_euclid(step) - count + 1) * step;
    let since = OffsetDateTime::from_unix_timestamp(first).unwrap_or(OffsetDateTime::UNIX_EPOCH);
    let mut conn = state.pool.acquire().await?;
    let buckets = stats::series(&mut conn, since, step, count).await?;
    let failing = stats::failing_targets(&mut conn, since, 10).await?;
    let mut whole = vec![0i64; LATENCY_BUCKETS.len() + 1];
    for bucket in &buckets {
        for (total, n) in whole.iter_mut().zip(&bucket.latency) {
            *total += n;
        }
    }
    let text = |q: f64| quantile(&whole, q).map_or("—".to_owned(), seconds_text);
    Ok(Charts {
        range,
        label,
        events: buckets.iter().map(|b| b.events).sum(),
        delivered: buckets.iter().map(|b| b.delivered).sum(),
        retried: buckets.iter().map(|b| b.retried).sum(),
        dead: buckets.iter().map(|b| b.dead).sum(),
        p50: text(0.5),
        p99: text(0.99),
        events_svg: bars(&buckets, &[("events", |b: &Bucket| b.events)]),
        outcomes_svg: bars(
            &buckets,
            &[
                ("delivered", |b: &Bucket| b.delivered),
                ("retried", |b: &Bucket| b.retried),
                ("dead", |b: &Bucket| b.dead),
            ],
        ),
        latency_svg: lines(&buckets),
        failing,
    })
}

/// The `q`-quantile of latency counts per bucket: the upper bound of the bucket it falls in
/// (the slowest bucket reads as its lower bound). `None` without counts.
fn quantile(counts: &[i64], q: f64) -> Option<f64> {
    let total: i64 = counts.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = (q * total as f64).ceil().max(1.0) as i64;
    let mut seen = 0;
    for (i, n) in counts.iter().enumerate() {
        seen += n;
        if seen >= rank {
            return Some(
                LATENCY_BUCKETS
                    .get(i)
                    .copied()
                    .unwrap_or(LATENCY_BUCKETS[LATENCY_BUCKETS.len() - 1]),
            );
        }
    }
    None
}

fn seconds_text(seconds: f64) -> String {
    if seconds < 1.0 {
        format!("≤ {:.0} ms", seconds * 1000.0)
    } else {
        format!("≤ {seconds:.0} s")
    }
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 160.0;
const LEFT: f64 = 48.0;
const BOTTOM: f64 = 20.0;

/// The frame: the y axis's top value, and the first, middle and last times on the x axis.
fn frame(out: &mut String, top: &str, buckets: &[Bucket]) {
    let plot_h = HEIGHT - BOTTOM;
    let _ = write!(
        out,
        r#"<line class="axis" x1="{LEFT}" y1="0" x2="{LEFT}" y2="{plot_h}"/><line class="axis" x1="{LEFT}" y1="{plot_h}" x2="{WIDTH}" y2="{plot_h}"/><text class="tick" x="{x}" y="10" text-anchor="end">{top}</text><text class="tick" x="{x}" y="{plot_h}" text-anchor="end">0</text>"#,
        x = LEFT - 4.0
    );
    let label = |b: &Bucket| format!("{:02}:{:02}", b.start.hour(), b.start.minute());
    if let (Some(first), Some(last)) = (buckets.first(), buckets.last()) {
        let middle = &buckets[buckets.len() / 2];
        let _ = write!(
            out,
            r#"<text class="tick" x="{LEFT}" y="{h}">{} UTC</text><text class="tick" x="{mid}" y="{h}" text-anchor="middle">{}</text><text class="tick" x="{WIDTH}" y="{h}" text-anchor="end">{}</text>"#,
            label(first),
            label(middle),
            label(last),
            h = HEIGHT - 4.0,
            mid = LEFT + (WIDTH - LEFT) / 2.0,
        );
    }
}

type Value = fn(&Bucket) -> i64;

/// Bars per bucket, stacked in the order of `series` (each a CSS class and its value).
fn bars(buckets: &[Bucket], series: &[(&str, Value)]) -> String {
    let top = buckets
        .iter()
        .map(|b| series.iter().map(|(_, v)| v(b)).sum::<i64>())
        .max()
        .unwrap_or(0)
        .max(1);
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" preserveAspectRatio="none">"#
    );
    frame(&mut out, &top.to_string(), buckets);
    let plot_h = HEIGHT - BOTTOM;
    let slot = (WIDTH - LEFT) / buckets.len().max(1) as f64;
    for (i, bucket) in buckets.iter().enumerate() {
        let mut y = plot_h;
        for (class, value) in series {
            let n = value(bucket);
            if n == 0 {
                continue;
            }
            let h = n as f64 / top as f64 * (plot_h - 12.0);
            y -= h;
            let _ = write!(
                out,
                r#"<rect class="{class}" x="{:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}"><title>{n} {class}</title></rect>"#,
                LEFT + i as f64 * slot + 1.0,
                (slot - 2.0).max(1.0),
            );
        }
    }
    out.push_str("</svg>");
    out
}

/// The p50 and p99 of each bucket with deliveries, as two lines.
fn lines(buckets: &[Bucket]) -> String {
    let points: Vec<(Option<f64>, Option<f64>)> = buckets
        .iter()
        .map(|b| (quantile(&b.latency, 0.5), quantile(&b.latency, 0.99)))
        .collect();
    let top = points
        .iter()
        .filter_map(|(_, p99)| *p99)
        .fold(0.0f64, f64::max)
        .max(0.01);
    let mut out = format!(
        r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" preserveAspectRatio="none">"#
    );
    frame(&mut out, &seconds_text(top), buckets);
    let plot_h = HEIGHT - BOTTOM;
    let slot = (WIDTH - LEFT) / buckets.len().max(1) as f64;
    for (class, pick) in [
        ("p50", (|p: &(Option<f64>, Option<f64>)| p.0) as fn(&_) -> _),
        ("p99", |p: &(Option<f64>, Option<f64>)| p.1),
    ] {
        let coords: Vec<String> = points
            .iter()
            .enumerate()
            .filter_map(|(i, p)| {
                pick(p).map(|v| {
                    format!(
                        "{:.1},{:.1}",
                        LEFT + (i as f64 + 0.5) * slot,
                        plot_h - v / top * (plot_h - 12.0)
                    )
                })
            })
            .collect();
        if !coords.is_empty() {
            let _ = write!(
                out,
                r#"<polyline class="{class}" points="{}"><title>{class}</title></polyline>"#,
                coords.join(" ")
            );
        }
    }
    out.push_str("</svg>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_read_the_bucket_bounds() {
        let mut counts = vec![0i64; LATENCY_BUCKETS.len() + 1];
        assert_eq!(quantile(&counts, 0.5), None);
        counts[2] = 98; // ≤ 10 ms
        counts[6] = 2; // ≤ 250 ms
        assert_eq!(quantile(&counts, 0.5), Some(0.01));
        assert_eq!(quantile(&counts, 0.99), Some(0.25));
        counts[LATENCY_BUCKETS.len()] = 1000; // slower than the last bound
        assert_eq!(quantile(&counts, 0.99), Some(300.0));
    }
}
