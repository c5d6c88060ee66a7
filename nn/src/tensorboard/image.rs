//! Images from arrays as PNG-encoded [`Image`] summaries.

use ndarray::ArrayView3;

use super::SummaryError;
use super::proto::Image;

/// How the axes of an image array are laid out (PyTorch's `dataformats`).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum ImageLayout {
    /// `(channels, height, width)`, PyTorch's default.
    #[default]
    Chw,
    /// `(height, width, channels)`.
    Hwc,
}

/// An element type of image arrays: bytes are taken as they are, floats are intensities
/// in `[0, 1]`, scaled by 255 and clipped to `[0, 255]` (PyTorch's `add_image`).
pub trait Pixel: Copy {
    /// The pixel's byte.
    fn to_byte(self) -> u8;
}

impl Pixel for u8 {
    fn to_byte(self) -> u8 {
        self
    }
}

impl Pixel for f32 {
    fn to_byte(self) -> u8 {
        // `as` truncates and saturates (NaN gives 0), as NumPy's `astype(uint8)` after clip.
        (self * 255.0).clamp(0.0, 255.0) as u8
    }
}

impl Pixel for f64 {
    fn to_byte(self) -> u8 {
        (self * 255.0).clamp(0.0, 255.0) as u8
    }
}

/// The PNG-encoded image of `image` (1 channel: grayscale, 3: RGB, 4: RGBA).
pub(crate) fn encode_image<P: Pixel>(
    tag: &str,
    image: ArrayView3<'_, P>,
    layout: ImageLayout,
) -> Result<Image, SummaryError> {
    let hwc = match layout {
        ImageLayout::Hwc => image,
        ImageLayout::Chw => image.permuted_axes([1, 2, 0]),
    };
    let (height, width, channels) = hwc.dim();
    let invalid = |reason: &str| SummaryError::InvalidImage {
        tag: tag.to_string(),
        shape: image.shape().to_vec(),
        reason: reason.to_string(),
    };
    let color = match channels {
        1 => png::ColorType::Grayscale,
        3 => png::ColorType::Rgb,
        4 => png::ColorType::Rgba,
        _ => return Err(invalid("an image has 1, 3 or 4 channels")),
    };
    if height == 0 || width == 0 {
        return Err(invalid("an image has at least one pixel"));
    }
    let (Ok(h), Ok(w)) = (i32::try_from(height), i32::try_from(width)) else {
        return Err(invalid("an image has at most 2^31 - 1 rows and columns"));
    };
    // Row-major (height, width, channels): the order of PNG's samples.
    let bytes: Vec<u8> = hwc.iter().map(|p| p.to_byte()).collect();
    let mut png_file = Vec::new();
    let mut encoder = png::Encoder::new(&mut png_file, w as u32, h as u32);
    encoder.set_color(color);
    encoder.set_depth(png::BitDepth::Eight);
    encoder
        .write_header()
        .and_then(|mut writer| writer.write_image_data(&bytes))
        .map_err(|e| invalid(&e.to_string()))?;
    Ok(Image {
        height: h,
        width: w,
        colorspace: channels as i32,
        encoded_image_string: png_file,
    })
}
