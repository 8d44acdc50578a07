//! QR codes of `otpauth://` URIs, as SVG (inline in JSON) or PNG, for
//! authenticator apps to scan at enrolment.

use base64::{engine::general_purpose::STANDARD, Engine};
use qrcode::{render::svg, EcLevel, QrCode};

/// Pixels per module in the PNG, and the quiet zone in modules.
const PNG_SCALE: usize = 6;
const QUIET: usize = 4;

fn code(data: &str) -> Option<QrCode> {
    // Medium error correction: robust to glare on a phone screen, and an
    // otpauth URI (~150 bytes) still fits comfortably.
    QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M).ok()
}

/// An SVG document, or `None` if the data cannot be encoded (too long).
pub fn svg(data: &str) -> Option<String> {
    Some(
        code(data)?
            .render::<svg::Color<'_>>()
            .min_dimensions(200, 200)
            .quiet_zone(true)
            .build(),
    )
}

/// A grayscale PNG, base64-encoded for JSON.
pub fn png_base64(data: &str) -> Option<String> {
    let qr = code(data)?;
    let width = qr.width();
    let side = (width + 2 * QUIET) * PNG_SCALE;
    let colors = qr.to_colors();
    let mut pixels = vec![255u8; side * side];
    for (i, c) in colors.iter().enumerate() {
        if *c != qrcode::Color::Dark {
            continue;
        }
        let (mx, my) = (
            (i % width + QUIET) * PNG_SCALE,
            (i / width + QUIET) * PNG_SCALE,
        );
        for y in my..my + PNG_SCALE {
            pixels[y * side + mx..y * side + mx + PNG_SCALE].fill(0);
        }
    }
    let mut out = Vec::new();
    {
        let side = u32::try_from(side).ok()?;
        let mut enc = png::Encoder::new(&mut out, side, side);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::Eight);
        let mut w = enc.write_header().ok()?;
        w.write_image_data(&pixels).ok()?;
    }
    Some(STANDARD.encode(out))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_svg_and_png() {
        let uri = "otpauth://totp/Acme:alice?secret=GEZDGNBVGY3TQOJQGEZDGNBVGY3TQOJQ&issuer=Acme";
        let s = svg(uri).unwrap();
        assert!(s.starts_with("<?xml") && s.contains("<svg"));
        let png = STANDARD.decode(png_base64(uri).unwrap()).unwrap();
        assert_eq!(&png[1..4], b"PNG");
        assert!(svg(&"x".repeat(10_000)).is_none());
    }
}
