//! Charts as SVG: bars, lines and pies drawn from a report's rows on the server, so
//! a page, an email or a slide shows them without a script. Every text is escaped;
//! the document holds no script, link or external reference.

use std::fmt::Write as _;

use crate::xml_escape as escape;

/// How a report is drawn.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    serde::Serialize,
    serde::Deserialize,
    utoipa::ToSchema,
)]
#[serde(rename_all = "lowercase")]
pub enum ChartKind {
    /// Rows only, no chart.
    #[default]
    Table,
    Bar,
    Line,
    Pie,
}

/// What a chart shows: a value per category (the first group key), per series (the
/// second group key's values, or one series).
pub struct ChartData {
    pub title: String,
    pub categories: Vec<String>,
    /// Each series' name and its value per category (`None`: no value there).
    pub series: Vec<(String, Vec<Option<f64>>)>,
}

const WIDTH: f64 = 720.0;
const HEIGHT: f64 = 400.0;
const PALETTE: [&str; 8] = [
    "#2563eb", "#16a34a", "#ea580c", "#9333ea", "#0891b2", "#ca8a04", "#dc2626", "#4b5563",
];
/// Most slices a pie draws; the rest are summed as one.
const MAX_SLICES: usize = 12;

/// The chart as a standalone SVG document.
pub fn svg(kind: ChartKind, data: &ChartData) -> String {
    let mut out = String::new();
    let _ = write!(
        out,
        r##"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {WIDTH} {HEIGHT}" width="{WIDTH}" height="{HEIGHT}" role="img" aria-label="{title}" font-family="sans-serif" font-size="12"><title>{title}</title><rect width="100%" height="100%" fill="#fff"/><text x="16" y="24" font-size="15" font-weight="bold" fill="#111">{title}</text>"##,
        title = escape(&data.title)
    );
    if data.categories.is_empty() {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">No data</text>"##,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
    } else {
        match kind {
            ChartKind::Pie => pie(&mut out, data),
            ChartKind::Line => axes(&mut out, data, false),
            ChartKind::Bar | ChartKind::Table => axes(&mut out, data, true),
        }
    }
    out.push_str("</svg>");
    out
}

/// Bars (grouped by series) or lines over a value axis with round ticks.
fn axes(out: &mut String, data: &ChartData, bars: bool) {
    let (left, right, top, bottom) = (64.0, WIDTH - 16.0, 44.0, HEIGHT - 72.0);
    let values = data.series.iter().flat_map(|(_, v)| v.iter().flatten());
    let (lo, hi) = values.fold((0.0f64, 0.0f64), |(lo, hi), &v| (lo.min(v), hi.max(v)));
    let (lo, hi, step) = ticks(lo, hi);
    let y = |v: f64| bottom - (v - lo) / (hi - lo) * (bottom - top);
    let mut t = lo;
    while t <= hi + step / 2.0 {
        let _ = write!(
            out,
            r##"<line x1="{left}" x2="{right}" y1="{0:.1}" y2="{0:.1}" stroke="#e5e7eb"/><text x="{1}" y="{2:.1}" text-anchor="end" fill="#374151">{3}</text>"##,
            y(t),
            left - 6.0,
            y(t) + 4.0,
            escape(&number(t))
        );
        t += step;
    }
    let n = data.categories.len() as f64;
    let band = (right - left) / n;
    // Category labels, thinned when too many to read.
    let every = (data.categories.len() / 24).max(1);
    for (i, label) in data.categories.iter().enumerate() {
        if i % every != 0 {
            continue;
        }
        let x = left + band * (i as f64 + 0.5);
        let _ = write!(
            out,
            r##"<text x="{x:.1}" y="{:.1}" text-anchor="end" transform="rotate(-35 {x:.1} {:.1})" fill="#374151">{}</text>"##,
            bottom + 14.0,
            bottom + 14.0,
            escape(&shorten(label, 18))
        );
    }
    let series = data.series.len().max(1) as f64;
    for (s, (_, values)) in data.series.iter().enumerate() {
        let colour = PALETTE[s % PALETTE.len()];
        if bars {
            let width = band * 0.8 / series;
            for (i, v) in values.iter().enumerate() {
                let Some(v) = v else { continue };
                let x = left + band * i as f64 + band * 0.1 + width * s as f64;
                let (y0, y1) = (y(v.max(0.0)), y(v.min(0.0)));
                let _ = write!(
                    out,
                    r#"<rect x="{x:.1}" y="{y0:.1}" width="{width:.1}" height="{:.1}" fill="{colour}"><title>{}</title></rect>"#,
                    (y1 - y0).max(0.5),
                    escape(&format!("{}: {}", data.categories[i], number(*v)))
                );
            }
        } else {
            let points: Vec<String> = values
                .iter()
                .enumerate()
                .filter_map(|(i, v)| {
                    v.map(|v| format!("{:.1},{:.1}", left + band * (i as f64 + 0.5), y(v)))
                })
                .collect();
            let _ = write!(
                out,
                r#"<polyline points="{}" fill="none" stroke="{colour}" stroke-width="2"/>"#,
                points.join(" ")
            );
            for (i, v) in values.iter().enumerate() {
                let Some(v) = v else { continue };
                let _ = write!(
                    out,
                    r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{colour}"><title>{}</title></circle>"#,
                    left + band * (i as f64 + 0.5),
                    y(*v),
                    escape(&format!("{}: {}", data.categories[i], number(*v)))
                );
            }
        }
    }
    legend(
        out,
        data.series.iter().map(|(name, _)| name.as_str()),
        HEIGHT - 16.0,
    );
}

/// Slices of the first series, largest first, the smallest summed as "Other".
fn pie(out: &mut String, data: &ChartData) {
    let Some((_, values)) = data.series.first() else {
        return;
    };
    let mut slices: Vec<(String, f64)> = data
        .categories
        .iter()
        .zip(values)
        .filter_map(|(c, v)| v.filter(|v| *v > 0.0).map(|v| (c.clone(), v)))
        .collect();
    slices.sort_by(|a, b| b.1.total_cmp(&a.1));
    if slices.len() > MAX_SLICES {
        let rest: f64 = slices.drain(MAX_SLICES - 1..).map(|(_, v)| v).sum();
        slices.push(("Other".into(), rest));
    }
    let total: f64 = slices.iter().map(|(_, v)| v).sum();
    if total <= 0.0 {
        let _ = write!(
            out,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#555">No data</text>"##,
            WIDTH / 2.0,
            HEIGHT / 2.0
        );
        return;
    }
    let (cx, cy, r) = (220.0, 220.0, 150.0);
    let mut angle = -std::f64::consts::FRAC_PI_2;
    for (i, (label, v)) in slices.iter().enumerate() {
        let colour = PALETTE[i % PALETTE.len()];
        let tip = escape(&format!(
            "{label}: {} ({:.1}%)",
            number(*v),
            v / total * 100.0
        ));
        if slices.len() == 1 {
            let _ = write!(
                out,
                r#"<circle cx="{cx}" cy="{cy}" r="{r}" fill="{colour}"><title>{tip}</title></circle>"#
            );
            break;
        }
        let sweep = v / total * std::f64::consts::TAU;
        let (x0, y0) = (cx + r * angle.cos(), cy + r * angle.sin());
        angle += sweep;
        let (x1, y1) = (cx + r * angle.cos(), cy + r * angle.sin());
        let large = if sweep > std::f64::consts::PI { 1 } else { 0 };
        let _ = write!(
            out,
            r##"<path d="M{cx},{cy} L{x0:.1},{y0:.1} A{r},{r} 0 {large} 1 {x1:.1},{y1:.1} Z" fill="{colour}" stroke="#fff"><title>{tip}</title></path>"##
        );
    }
    // The legend beside the pie, one line per slice.
    for (i, (label, v)) in slices.iter().enumerate() {
        let y = 70.0 + 22.0 * i as f64;
        let _ = write!(
            out,
            r##"<rect x="420" y="{:.1}" width="12" height="12" fill="{}"/><text x="440" y="{y:.1}" fill="#111">{} · {} ({:.1}%)</text>"##,
            y - 10.0,
            PALETTE[i % PALETTE.len()],
            escape(&shorten(label, 24)),
            escape(&number(*v)),
            v / total * 100.0
        );
    }
}

fn legend<'a>(out: &mut String, names: impl Iterator<Item = &'a str>, y: f64) {
    let mut x = 64.0;
    for (i, name) in names.enumerate() {
        let name = shorten(name, 20);
        let _ = write!(
            out,
            r##"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{y:.1}" fill="#111">{}</text>"##,
            y - 10.0,
            PALETTE[i % PALETTE.len()],
            x + 16.0,
            escape(&name)
        );
        x += 28.0 + 7.0 * name.chars().count() as f64;
        if x > WIDTH - 80.0 {
            break;
        }
    }
}

/// The axis from `lo` to `hi` widened to round ticks (1, 2 or 5 times a power of
/// ten), about five of them: `(low, high, step)`.
fn ticks(lo: f64, hi: f64) -> (f64, f64, f64) {
    let span = if hi - lo <= 0.0 {
        hi.abs().max(1.0)
    } else {
        hi - lo
    };
    let raw = span / 5.0;
    let power = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * power)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * power);
    let low = (lo / step).floor() * step;
    let high = ((hi / step).ceil() * step).max(low + step);
    (low, high, step)
}

/// A number as a label: whole numbers without a fraction, others to two places,
/// thousands as `k` and millions as `M`.
fn number(v: f64) -> String {
    let a = v.abs();
    if a >= 1e6 {
        format!("{}M", trim(v / 1e6))
    } else if a >= 1e4 {
        format!("{}k", trim(v / 1e3))
    } else {
        trim(v)
    }
}

fn trim(v: f64) -> String {
    let s = format!("{v:.2}");
    let s = s.trim_end_matches('0').trim_end_matches('.');
    if s == "-0" { "0".into() } else { s.to_string() }
}

fn shorten(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        text.to_string()
    } else {
        let cut: String = text.chars().take(max - 1).collect();
        format!("{cut}…")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data() -> ChartData {
        ChartData {
            title: "Won <deals> & \"more\"".into(),
            categories: vec!["Ann".into(), "<script>alert(1)</script>".into()],
            series: vec![("count".into(), vec![Some(3.0), Some(7.0)])],
        }
    }

    #[test]
    fn every_text_is_escaped_and_no_script_gets_in() {
        for kind in [ChartKind::Bar, ChartKind::Line, ChartKind::Pie] {
            let svg = svg(kind, &data());
            assert!(
                svg.starts_with("<svg xmlns=\"http://www.w3.org/2000/svg\""),
                "{svg}"
            );
            assert!(svg.ends_with("</svg>"));
            assert!(!svg.contains("<script"), "{kind:?}: {svg}");
            assert!(
                svg.contains("Won &lt;deals&gt; &amp; &quot;more&quot;"),
                "{svg}"
            );
            assert!(svg.contains("&lt;script&gt;"), "{kind:?}");
        }
    }

    #[test]
    fn bars_are_as_tall_as_their_values() {
        let svg = svg(ChartKind::Bar, &data());
        let heights: Vec<f64> = svg
            .match_indices("<rect x=")
            .filter_map(|(i, _)| {
                let rest = &svg[i..];
                let h = rest.split("height=\"").nth(1)?.split('"').next()?;
                rest.contains("<title>").then(|| h.parse().ok()).flatten()
            })
            .filter(|h: &f64| *h < 300.0)
            .collect();
        assert_eq!(heights.len(), 2, "{svg}");
        let ratio = heights[1] / heights[0];
        assert!((ratio - 7.0 / 3.0).abs() < 0.05, "{heights:?}");
    }

    #[test]
    fn pies_sweep_by_share_and_ticks_are_round() {
        let svg = svg(ChartKind::Pie, &data());
        assert!(svg.contains("(30.0%)") && svg.contains("(70.0%)"), "{svg}");
        assert_eq!(ticks(0.0, 7.0), (0.0, 8.0, 2.0));
        assert_eq!(ticks(0.0, 48_000.0), (0.0, 50_000.0, 10_000.0));
        assert_eq!(ticks(-3.0, 7.0), (-4.0, 8.0, 2.0));
        assert_eq!(number(48_000.0), "48k");
        assert_eq!(number(2.5), "2.5");
        let empty = ChartData {
            title: "t".into(),
            categories: vec![],
            series: vec![],
        };
        assert!(super::svg(ChartKind::Bar, &empty).contains("No data"));
    }
}
