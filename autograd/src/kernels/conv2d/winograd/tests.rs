//! Tests of the Winograd kernels: agreement with im2col on random shapes, same bits on one
//! and two threads.

use super::super::{
    Method, conv2d_forward, conv2d_input_grad, conv2d_weight_grad, forward as forward_by,
    input_grad as input_grad_by, weight_grad_chunked,
};
use super::*;
use crate::kernels::testing::{filled, on_threads};
use ndarray::{Array4, ArrayView4};
use proptest::prelude::*;

/// Every element of `got` within `tol · (1 + max |want|)` of `want`.
fn assert_agree<T: Float>(
    what: &str,
    got: &[T],
    want: &Array4<T>,
    tol: f64,
) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.len(), want.len(), "{}", what);
    let scale = 1.0
        + want
            .iter()
            .fold(0.0f64, |m, v| m.max(Float::to_f64(*v).abs()));
    for (i, (a, b)) in got.iter().zip(want).enumerate() {
        let (a, b) = (Float::to_f64(*a), Float::to_f64(*b));
        prop_assert!(
            (a - b).abs() <= tol * scale,
            "{}[{}]: {} vs {} (scale {})",
            what,
            i,
            a,
            b,
            scale
        );
    }
    Ok(())
}

/// The three maps by Winograd (in blocks of `block` images) and by im2col agree within
/// `tol`, the forward with and without a bias and `relu`.
fn agree<T: Float>(
    x: ArrayView4<'_, T>,
    w: ArrayView4<'_, T>,
    up: ArrayView4<'_, T>,
    g: &Conv2dGeometry,
    block: usize,
    tol: f64,
) -> Result<(), TestCaseError> {
    let n = x.shape()[0];
    let (xs, ws, gs) = (
        x.as_slice().unwrap(),
        w.as_slice().unwrap(),
        up.as_slice().unwrap(),
    );
    let bias: Vec<T> = (0..g.out_channels)
        .map(|o| T::from_f64(o as f64 * 0.3 - 0.5))
        .collect();
    for epilogue in [
        Epilogue::default(),
        Epilogue {
            bias: Some(&bias),
            relu: true,
        },
    ] {
        let want = forward_by(x, w, epilogue, g, Method::Im2col);
        let got = forward_in_blocks(xs, ws, epilogue, g, n, block);
        assert_agree("forward", &got, &want, tol)?;
    }
    let x_shape = g.input_shape(n);
    let want = input_grad_by(up, w, x_shape, g, Method::Im2col);
    assert_agree("input grad", &input_grad(gs, ws, g, n), &want, tol)?;
    let want = weight_grad_chunked(x, up, g.weight_shape(), g, n);
    let got = weight_grad_in_blocks(xs, gs, g, n, block);
    assert_agree("weight grad", &got, &want, tol)
}

/// Random supported geometries: odd and even sizes, padding 0 to 2 per axis, channel
/// counts from 1 to 19.
fn geometries() -> impl Strategy<Value = (Conv2dGeometry, usize)> {
    (
        (1usize..5, 1usize..20, 1usize..20),
        (1usize..10, 1usize..10, 0usize..3, 0usize..3),
    )
        .prop_map(|((n, c, o), (h, w, ph, pw))| {
            let (h, w) = (
                h.max(3usize.saturating_sub(2 * ph)),
                w.max(3usize.saturating_sub(2 * pw)),
            );
            let (g, _) =
                Conv2dGeometry::new(&[n, c, h, w], &[o, c, 3, 3], [1, 1], [ph, pw], [1, 1], 1)
                    .expect("valid by construction");
            (g, n)
        })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Forward, input gradient and weight gradient by Winograd agree with im2col, in f64 to
    /// 1e-12 and in f32 to 1e-5 of the largest value, in blocks of 1 and 2 images.
    #[test]
    fn winograd_agrees_with_im2col((g, n) in geometries(), block in 1usize..3, seed in any::<u64>()) {
        prop_assert!(supports(&g));
        let x = filled(g.input_shape(n), seed);
        let w = filled(g.weight_shape(), seed ^ 1);
        let up = filled(g.output_shape(n), seed ^ 2);
        agree(x.view(), w.view(), up.view(), &g, block, 1e-12)?;
        let to32 = |a: &Array4<f64>| a.mapv(|v| v as f32);
        let (x, w, up) = (to32(&x), to32(&w), to32(&up));
        agree(x.view(), w.view(), up.view(), &g, block, 1e-5)?;
    }
}

/// The second layer of the Fashion-MNIST CNN at batches that split in two halves: Winograd
/// is chosen, agrees with im2col, and gives the same bits on one and two threads.
#[test]
fn the_cnn_second_layer_gives_the_same_bits_on_one_and_two_threads() {
    for n in [12, 33] {
        let (xs, ws) = ([n, 32, 14, 14], [64, 32, 3, 3]);
        let (g, ys) = Conv2dGeometry::new(&xs, &ws, [1, 1], [1, 1], [1, 1], 1).unwrap();
        assert_eq!(Method::choose(&g), Method::Winograd);
        let tiling = Tiling::new(&g);
        for block in [
            tiling.images_per_block::<f32>(&g, TILE_BUDGET_BYTES),
            tiling.images_per_block::<f64>(&g, TILE_BUDGET_BYTES),
        ] {
            assert!(Plan::new(&g, n, block).mid.is_some(), "{xs:?} splits");
        }
        let (x, w, up) = (filled(xs, 3), filled(ws, 4), filled(ys, 5));
        agree(x.view(), w.view(), up.view(), &g, 2, 1e-12).unwrap();
        let (x32, w32, up32) = (
            x.mapv(|v| v as f32),
            w.mapv(|v| v as f32),
            up.mapv(|v| v as f32),
        );
        let results = |threads| {
            on_threads(threads, || {
                let b64 = |a: Array4<f64>| a.iter().map(|v| v.to_bits()).collect::<Vec<_>>();
                let b32 = |a: Array4<f32>| a.iter().map(|v| u64::from(v.to_bits())).collect();
                vec![
                    b64(conv2d_forward(x.view(), w.view(), &g)),
                    b64(conv2d_input_grad(up.view(), w.view(), xs, &g)),
                    b64(conv2d_weight_grad(x.view(), up.view(), ws, &g)),
                    b32(conv2d_forward(x32.view(), w32.view(), &g)),
                    b32(conv2d_input_grad(up32.view(), w32.view(), xs, &g)),
                    b32(conv2d_weight_grad(x32.view(), up32.view(), ws, &g)),
                ]
            })
        };
        let (one, two) = (results(1), results(2));
        for (i, (a, b)) in one.iter().zip(&two).enumerate() {
            assert!(a == b, "{xs:?}: result {i} differs between 1 and 2 threads");
        }
    }
}
