//! Bar charts of a window's days, drawn as SVG by the templates from the geometry made here (no
//! script, no library in the browser). Pure: values in, rectangles out.

/// One day's bar: where it is drawn and what its tooltip says.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub x: f64,
    pub y: f64,
    pub width: f64,
    pub height: f64,
    pub title: String,
}

/// A chart of one value per day.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    pub title: String,
    pub width: f64,
    pub height: f64,
    pub bars: Vec<Bar>,
    /// The largest value, as the axis says it.
    pub top: String,
    pub first_day: String,
    pub last_day: String,
}

pub const WIDTH: f64 = 600.0;
pub const HEIGHT: f64 = 120.0;

/// `days` (date, value) oldest first; `None` values draw nothing; `unit` formats a value.
pub fn bars(title: &str, days: &[(String, Option<f64>)], unit: fn(f64) -> String) -> Chart {
    let top = days.iter().filter_map(|(_, v)| *v).fold(0.0_f64, f64::max);
    let slot = WIDTH / days.len().max(1) as f64;
    let bars = days
        .iter()
        .enumerate()
        .filter_map(|(i, (date, v))| {
            let v = (*v)?;
            let height = if top > 0.0 { v / top * HEIGHT } else { 0.0 };
            Some(Bar {
                x: i as f64 * slot + slot * 0.1,
                y: HEIGHT - height,
                width: (slot * 0.8).max(0.5),
                height,
                title: format!("{date}: {}", unit(v)),
            })
        })
        .collect();
    Chart {
        title: title.to_string(),
        width: WIDTH,
        height: HEIGHT,
        bars,
        top: unit(top),
        first_day: days.first().map(|d| d.0.clone()).unwrap_or_default(),
        last_day: days.last().map(|d| d.0.clone()).unwrap_or_default(),
    }
}

/// A count, as charts and figures print it.
pub fn count(v: f64) -> String {
    format!("{v:.0}")
}

/// Seconds, in the largest unit that keeps the number readable.
pub fn duration(secs: f64) -> String {
    if secs < 1.0 {
        format!("{:.0} ms", secs * 1000.0)
    } else if secs < 120.0 {
        format!("{secs:.1} s")
    } else if secs < 7200.0 {
        format!("{:.1} min", secs / 60.0)
    } else if secs < 172_800.0 {
        format!("{:.1} h", secs / 3600.0)
    } else {
        format!("{:.1} d", secs / 86400.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tallest_bar_fills_the_chart_and_gaps_draw_nothing() {
        let days = vec![
            ("2026-12-01".to_string(), Some(2.0)),
            ("2026-12-02".to_string(), None),
            ("2026-12-03".to_string(), Some(4.0)),
            ("2026-12-04".to_string(), Some(0.0)),
        ];
        let c = bars("deploys", &days, count);
        assert_eq!(c.bars.len(), 3);
        assert_eq!(c.bars[0].height, HEIGHT / 2.0);
        assert_eq!(c.bars[1].height, HEIGHT);
        assert_eq!(c.bars[1].x, 2.0 * WIDTH / 4.0 + WIDTH / 4.0 * 0.1);
        assert_eq!(c.bars[2].height, 0.0);
        assert_eq!(c.top, "4");
        assert_eq!(c.bars[1].title, "2026-12-03: 4");
        assert_eq!(
            (c.first_day.as_str(), c.last_day.as_str()),
            ("2026-12-01", "2026-12-04")
        );
    }

    #[test]
    fn an_empty_window_is_an_empty_chart() {
        let c = bars("deploys", &[], count);
        assert!(c.bars.is_empty());
        assert_eq!(c.top, "0");
    }

    #[test]
    fn durations_read_in_their_unit() {
        assert_eq!(duration(0.25), "250 ms");
        assert_eq!(duration(42.0), "42.0 s");
        assert_eq!(duration(600.0), "10.0 min");
        assert_eq!(duration(7200.0), "2.0 h");
        assert_eq!(duration(3.0 * 86400.0), "3.0 d");
    }
}
