//! Draws a `Plot` with `plotters`: SVG (text as SVG text) or PNG (text rendered with the
//! DejaVu Sans font embedded in the binary through plotters' `ab_glyph` feature, so a machine
//! without fonts renders it too). One colour per subflow, its points as dots, marked points
//! (reinjections, retransmissions) as red crosses, the total as a black line, events as grey
//! vertical lines, a legend per series.

use std::{path::Path, sync::Once};

use plotters::{coord::Shift, prelude::*, style::register_font};

use super::{PlotError, series::Plot};

/// The embedded font (DejaVu Sans; its licence is in assets/DejaVuSans.LICENSE).
static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
const FONT_FAMILY: &str = "sans-serif";

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ImageFormat {
    Svg,
    Png,
}

impl ImageFormat {
    pub fn of(path: &Path) -> Option<Self> {
        match path.extension()?.to_str()? {
            "svg" => Some(Self::Svg),
            "png" => Some(Self::Png),
            _ => None,
        }
    }
}

/// Draws `plot` to `path` (format by extension), `size` pixels.
pub fn draw(plot: &Plot, path: &Path, size: (u32, u32)) -> Result<(), PlotError> {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        // The font is ours and valid; if it were not, text would be missing, not the plot.
        let _ = register_font(FONT_FAMILY, FontStyle::Normal, FONT);
    });
    let failed = |message: String| PlotError::Draw {
        path: path.to_path_buf(),
        message,
    };
    match ImageFormat::of(path) {
        Some(ImageFormat::Svg) => {
            let root = SVGBackend::new(path, size).into_drawing_area();
            draw_on(&root, plot).map_err(|e| failed(e.to_string()))
        }
        Some(ImageFormat::Png) => {
            let root = BitMapBackend::new(path, size).into_drawing_area();
            draw_on(&root, plot).map_err(|e| failed(e.to_string()))
        }
        None => Err(PlotError::UnknownImageFormat(path.to_path_buf())),
    }
}

/// The bounds of every point, widened a little so no point sits on an axis, never empty.
fn bounds(plot: &Plot) -> ((f64, f64), (f64, f64)) {
    let points = plot.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in points {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        return ((0.0, 1.0), (0.0, 1.0));
    }
    let widen = |lo: f64, hi: f64| {
        let pad = if hi > lo { (hi - lo) * 0.03 } else { 1.0 };
        (lo - pad, hi + pad)
    };
    (widen(x0.min(0.0), x1), widen(y0.min(0.0), y1))
}

fn draw_on<DB: DrawingBackend>(
    root: &DrawingArea<DB, Shift>,
    plot: &Plot,
) -> Result<(), DrawingAreaErrorKind<DB::ErrorType>> {
    root.fill(&WHITE)?;
    let ((x0, x1), (y0, y1)) = bounds(plot);
    let mut chart = ChartBuilder::on(root)
        .caption(&plot.title, (FONT_FAMILY, 26))
        .margin(20)
        .x_label_area_size(55)
        .y_label_area_size(110)
        .build_cartesian_2d(x0..x1, y0..y1)?;
    chart
        .configure_mesh()
        .x_desc(plot.x_label.as_str())
        .y_desc(plot.y_label.as_str())
        .label_style((FONT_FAMILY, 15))
        .axis_desc_style((FONT_FAMILY, 18))
        .draw()?;
    for event in &plot.events {
        let grey = RGBColor(150, 150, 150);
        chart.draw_series(LineSeries::new(
            [(event.time_s, y0), (event.time_s, y1)],
            grey.stroke_width(1),
        ))?;
    }
    for (i, series) in plot.series.iter().enumerate() {
        let legend = if series.tcp_stream.is_none() {
            let line = BLACK.stroke_width(2);
            chart
                .draw_series(LineSeries::new(series.points.iter().copied(), line))?
                .label(series.label.as_str())
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 16, y)], line))
        } else {
            let colour = Palette99::pick(i).to_rgba();
            chart
                .draw_series(
                    series
                        .points
                        .iter()
                        .map(|&p| Circle::new(p, 2, colour.filled())),
                )?
                .label(series.label.as_str())
                .legend(move |(x, y)| {
                    Rectangle::new([(x, y - 5), (x + 10, y + 5)], colour.filled())
                })
        };
        let _ = legend;
        if !series.marked.is_empty() {
            chart.draw_series(
                series
                    .marked
                    .iter()
                    .map(|&p| Cross::new(p, 4, RED.stroke_width(2))),
            )?;
        }
    }
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT_FAMILY, 16))
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()?;
    root.present()
}
