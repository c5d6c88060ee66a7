//! `--plot` of the fashion_mnist example: loss and accuracy per epoch, the confusion matrix
//! as a heat map, and a grid of held-out images the model got wrong, in one SVG.

use std::error::Error;
use std::path::Path;

use ndarray::Array3;
use tapegrad::nn::history::History;
use tapegrad::report::ConfusionMatrix;

/// What `--plot` draws.
pub(crate) struct Figure<'a> {
    pub(crate) history: &'a History,
    pub(crate) confusion: &'a ConfusionMatrix,
    /// The held-out images, `(n, height, width)` in [0, 1].
    pub(crate) images: &'a Array3<f32>,
    pub(crate) truth: &'a [usize],
    pub(crate) predicted: &'a [usize],
    pub(crate) names: &'a [&'a str],
}

/// How many misclassified held-out images the plot shows, and in how many columns.
const WRONG_SHOWN: usize = 24;
const WRONG_COLUMNS: usize = 6;
/// Grey levels of the drawn images (runs of equal level in a row are one rectangle, white
/// is not drawn: a few thousand rectangles for 24 images).
const GREY_LEVELS: f32 = 8.0;

/// The SVG of `--plot`: loss and accuracy per epoch on top; below, the confusion matrix as
/// a heat map and a grid of held-out images the model got wrong.
pub(crate) fn plot_report(figure: &Figure, path: &Path) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;

    let root = SVGBackend::new(path, (960, 920)).into_drawing_area();
    root.fill(&WHITE)?;
    let (top, bottom) = root.split_vertically(400);
    plot_history(figure.history, &top)?;
    let (left, right) = bottom.split_horizontally(480);
    plot_confusion(figure.confusion, figure.names, &left)?;
    plot_wrong(figure, &right)?;
    root.present()?;
    Ok(())
}

type Area<'b> =
    plotters::drawing::DrawingArea<plotters::prelude::SVGBackend<'b>, plotters::coord::Shift>;

/// Two panels, loss and accuracy per epoch, training and (when present) held-out.
fn plot_history(history: &History, area: &Area) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;

    let panels = area.split_evenly((1, 2));
    for (panel, (metric, title)) in panels
        .iter()
        .zip([("loss", "loss"), ("accuracy", "accuracy")])
    {
        let series: Vec<(&str, &[f64], RGBColor)> = [
            ("training", history.get(metric), BLUE),
            ("held out", history.get(&format!("val_{metric}")), RED),
        ]
        .into_iter()
        .filter_map(|(label, values, color)| values.map(|v| (label, v, color)))
        .collect();
        let all = series.iter().flat_map(|(_, v, _)| v.iter().copied());
        let (low, high) = all.fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
            (lo.min(v), hi.max(v))
        });
        let margin = ((high - low) * 0.1).max(1e-3);
        let epochs = history.epochs().max(2);
        let mut chart = ChartBuilder::on(panel)
            .caption(title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(35)
            .y_label_area_size(50)
            .build_cartesian_2d(1..epochs, (low - margin)..(high + margin))?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(epochs.min(10))
            .draw()?;
        for (label, values, color) in series {
            chart
                .draw_series(LineSeries::new(
                    values.iter().enumerate().map(|(i, &v)| (i + 1, v)),
                    color.stroke_width(2),
                ))?
                .label(label)
                .legend(move |(x, y)| PathElement::new([(x, y), (x + 20, y)], color));
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()?;
    }
    Ok(())
}

/// Text of `size` pixels centred on its position.
fn centred(
    size: f64,
    color: &'static plotters::style::RGBColor,
) -> plotters::style::TextStyle<'static> {
    use plotters::style::text_anchor::{HPos, Pos, VPos};
    use plotters::style::{IntoFont, TextStyle};
    TextStyle::from(("sans-serif", size).into_font())
        .color(color)
        .pos(Pos::new(HPos::Center, VPos::Center))
}

/// The confusion matrix as a heat map, each row scaled by its class's count (the colour is
/// the share of the true class predicted as the column's class), with the counts written in.
fn plot_confusion(
    confusion: &ConfusionMatrix,
    names: &[&str],
    area: &Area,
) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;
    use plotters::style::text_anchor::{HPos, Pos, VPos};

    let k = confusion.num_classes();
    let cell = (340 / k.max(1)) as i32;
    let (x0, y0) = (90_i32, 50_i32);
    area.draw(&Text::new(
        "confusion matrix (held out)",
        (240, 16),
        centred(18.0, &BLACK),
    ))?;
    area.draw(&Text::new(
        "rows: true class, columns: predicted; colour: share of the row",
        (240, 36),
        centred(11.0, &BLACK),
    ))?;
    let totals = confusion.class_totals();
    for (t, &total) in totals.iter().enumerate().take(k) {
        for p in 0..k {
            let count = confusion.count(t, p);
            let share = count as f64 / total.max(1) as f64;
            // White to dark blue.
            let mix = |white: u8, dark: u8| (255.0 - share * f64::from(white - dark)) as u8;
            let fill = RGBColor(mix(255, 8), mix(255, 48), mix(255, 107));
            let (x, y) = (x0 + p as i32 * cell, y0 + t as i32 * cell);
            area.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                fill.filled(),
            ))?;
            area.draw(&Rectangle::new(
                [(x, y), (x + cell, y + cell)],
                RGBColor(220, 220, 220).stroke_width(1),
            ))?;
            if count > 0 {
                let ink: &'static RGBColor = if share > 0.5 { &WHITE } else { &BLACK };
                area.draw(&Text::new(
                    count.to_string(),
                    (x + cell / 2, y + cell / 2),
                    centred(11.0, ink),
                ))?;
            }
        }
        let label = names.get(t).copied().unwrap_or("?");
        area.draw(&Text::new(
            label.to_string(),
            (x0 - 6, y0 + t as i32 * cell + cell / 2),
            TextStyle::from(("sans-serif", 11).into_font())
                .pos(Pos::new(HPos::Right, VPos::Center)),
        ))?;
        // Column names, staggered on two lines so that long names do not overlap.
        area.draw(&Text::new(
            label.to_string(),
            (
                x0 + t as i32 * cell + cell / 2,
                y0 + k as i32 * cell + 10 + 13 * (t as i32 % 2),
            ),
            centred(11.0, &BLACK),
        ))?;
    }
    area.draw(&Text::new(
        "predicted class",
        (x0 + k as i32 * cell / 2, y0 + k as i32 * cell + 44),
        centred(13.0, &BLACK),
    ))?;
    Ok(())
}

/// Up to [`WRONG_SHOWN`] held-out images the model got wrong, with their true and predicted
/// classes.
fn plot_wrong(figure: &Figure, area: &Area) -> Result<(), Box<dyn Error>> {
    use plotters::prelude::*;

    let wrong: Vec<usize> = (0..figure.truth.len())
        .filter(|&i| figure.truth[i] != figure.predicted[i])
        .collect();
    area.draw(&Text::new(
        format!(
            "held-out images it got wrong ({} of {})",
            wrong.len().min(WRONG_SHOWN),
            wrong.len()
        ),
        (240, 16),
        centred(18.0, &BLACK),
    ))?;
    let (_, height, width) = figure.images.dim();
    let scale = (56 / height.max(width).max(1)).max(1) as i32;
    let (cell_w, cell_h) = (80_i32, 118_i32);
    let name = |c: usize| figure.names.get(c).copied().unwrap_or("?");
    for (n, &i) in wrong.iter().take(WRONG_SHOWN).enumerate() {
        let (row, col) = ((n / WRONG_COLUMNS) as i32, (n % WRONG_COLUMNS) as i32);
        let x0 = col * cell_w + (cell_w - scale * width as i32) / 2;
        let y0 = 40 + row * cell_h;
        let image = figure.images.index_axis(ndarray::Axis(0), i);
        for r in 0..height {
            let mut c = 0;
            while c < width {
                let level = (image[[r, c]].clamp(0.0, 1.0) * (GREY_LEVELS - 1.0)).round();
                let start = c;
                while c < width
                    && (image[[r, c]].clamp(0.0, 1.0) * (GREY_LEVELS - 1.0)).round() == level
                {
                    c += 1;
                }
                if level > 0.0 {
                    // Dark ink on white paper.
                    let grey = (255.0 * (1.0 - level / (GREY_LEVELS - 1.0))) as u8;
                    let (x, y) = (x0 + start as i32 * scale, y0 + r as i32 * scale);
                    area.draw(&Rectangle::new(
                        [(x, y), (x + (c - start) as i32 * scale, y + scale)],
                        RGBColor(grey, grey, grey).filled(),
                    ))?;
                }
            }
        }
        let (w, h) = (scale * width as i32, scale * height as i32);
        area.draw(&Rectangle::new(
            [(x0, y0), (x0 + w, y0 + h)],
            RGBColor(190, 190, 190).stroke_width(1),
        ))?;
        let xc = col * cell_w + cell_w / 2;
        area.draw(&Text::new(
            format!("true: {}", name(figure.truth[i])),
            (xc, y0 + h + 11),
            centred(10.0, &BLACK),
        ))?;
        area.draw(&Text::new(
            format!("got: {}", name(figure.predicted[i])),
            (xc, y0 + h + 24),
            centred(10.0, &RED),
        ))?;
    }
    Ok(())
}
