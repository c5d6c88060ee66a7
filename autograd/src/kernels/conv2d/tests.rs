//! Tests of the convolution kernels: PyTorch golden values, adjointness, chunking.

use super::*;
use crate::kernels::testing::{
    assert_close, bits, filled, floats, golden, on_threads, pair, usizes,
};
use ndarray::{Array1, Array4, ArrayView4, Zip};
use proptest::prelude::*;

fn array4(shape: &[usize], values: Vec<f64>) -> Array4<f64> {
    Array4::from_shape_vec([shape[0], shape[1], shape[2], shape[3]], values).expect("4-D")
}

#[test]
fn replays_the_pytorch_conv2d_cases() {
    let golden = golden();
    let mut count = 0;
    for case in golden["cases"].as_array().expect("cases") {
        let op = case["op"].as_str().expect("op");
        if !op.starts_with("conv2d") {
            continue;
        }
        count += 1;
        let attrs = &case["attrs"];
        let inputs = case["inputs"].as_array().expect("inputs");
        let x_shape = usizes(&inputs[0]["shape"]);
        let w_shape = usizes(&inputs[1]["shape"]);
        let x = array4(&x_shape, floats(&inputs[0]["values"]));
        let w = array4(&w_shape, floats(&inputs[1]["values"]));
        let (g, out_shape) = Conv2dGeometry::new(
            &x_shape,
            &w_shape,
            pair(&attrs["stride"]),
            pair(&attrs["padding"]),
            pair(&attrs["dilation"]),
            attrs["groups"].as_u64().expect("groups") as usize,
        )
        .unwrap_or_else(|e| panic!("{op}: {e}"));
        assert_eq!(out_shape[..], usizes(&case["output"]["shape"])[..], "{op}");
        let mut y = conv2d_forward(x.view(), w.view(), &g);
        let bias = attrs["bias"].as_bool().expect("bias");
        if bias {
            let b = Array1::from(floats(&inputs[2]["values"]));
            for (o, &bo) in b.iter().enumerate() {
                y.index_axis_mut(Axis(1), o).mapv_inplace(|v| v + bo);
            }
        }
        assert_close(
            op,
            y.as_slice().unwrap(),
            &floats(&case["output"]["values"]),
        );
        let up = array4(&out_shape, floats(&case["upstream"]));
        let grads = case["grads"].as_array().expect("grads");
        let xs = [x_shape[0], x_shape[1], x_shape[2], x_shape[3]];
        let dx = conv2d_input_grad(up.view(), w.view(), xs, &g);
        assert_close(
            &format!("{op} dx"),
            dx.as_slice().unwrap(),
            &floats(&grads[0]),
        );
        let ws = [w_shape[0], w_shape[1], w_shape[2], w_shape[3]];
        let dw = conv2d_weight_grad(x.view(), up.view(), ws, &g);
        assert_close(
            &format!("{op} dw"),
            dw.as_slice().unwrap(),
            &floats(&grads[1]),
        );
        if bias {
            let db: Vec<f64> = (0..out_shape[1])
                .map(|o| up.index_axis(Axis(1), o).sum())
                .collect();
            assert_close(&format!("{op} db"), &db, &floats(&grads[2]));
        }
    }
    assert_eq!(count, 10, "conv2d cases in conv.json");
}

/// The convolution by its definition, for the random-shape tests.
fn naive_forward(
    x: &ArrayView4<'_, f64>,
    w: &ArrayView4<'_, f64>,
    g: &Conv2dGeometry,
) -> Array4<f64> {
    let n = x.shape()[0];
    let [_, cg, kh, kw] = g.weight_shape();
    let og = g.out_channels / g.groups;
    Array4::from_shape_fn(g.output_shape(n), |(b, o, r, q)| {
        let gi = o / og;
        let mut sum = 0.0;
        for c in 0..cg {
            for i in 0..kh {
                for j in 0..kw {
                    let ih = (r * g.stride[0] + i * g.dilation[0]) as isize - g.padding[0] as isize;
                    let iw = (q * g.stride[1] + j * g.dilation[1]) as isize - g.padding[1] as isize;
                    if ih >= 0
                        && iw >= 0
                        && (ih as usize) < g.input_hw[0]
                        && (iw as usize) < g.input_hw[1]
                    {
                        sum += w[[o, c, i, j]] * x[[b, gi * cg + c, ih as usize, iw as usize]];
                    }
                }
            }
        }
        sum
    })
}

fn dot(a: &Array4<f64>, b: &Array4<f64>) -> f64 {
    Zip::from(a).and(b).fold(0.0, |s, &x, &y| s + x * y)
}

/// `(x_shape, w_shape, stride, padding, dilation, groups)`.
type Case = (
    [usize; 4],
    [usize; 4],
    [usize; 2],
    [usize; 2],
    [usize; 2],
    usize,
);

/// Random geometries, the input from empty (all padding) to 5 rows or columns more than
/// the dilated kernel needs.
fn geometries() -> impl Strategy<Value = Case> {
    (
        (1usize..4, 1usize..4, 1usize..4, 1usize..4),
        (1usize..5, 1usize..5, 1usize..4, 1usize..4),
        (0usize..3, 0usize..3, 1usize..4, 1usize..4),
        (0usize..6, 0usize..6),
    )
        .prop_map(
            |((n, groups, cg, og), (kh, kw, sh, sw), (ph, pw, dh, dw), (eh, ew))| {
                let h = (dh * (kh - 1) + 1 + eh).saturating_sub(2 * ph);
                let w = (dw * (kw - 1) + 1 + ew).saturating_sub(2 * pw);
                (
                    [n, groups * cg, h, w],
                    [groups * og, cg, kh, kw],
                    [sh, sw],
                    [ph, pw],
                    [dh, dw],
                    groups,
                )
            },
        )
}

/// Every element of `got` within `1e-12 · (1 + |want|)` of `want`.
fn assert_near(what: &str, got: &Array4<f64>, want: &Array4<f64>) -> Result<(), TestCaseError> {
    prop_assert_eq!(got.shape(), want.shape());
    for (a, b) in got.iter().zip(want) {
        prop_assert!(
            (a - b).abs() <= 1e-12 * (1.0 + b.abs()),
            "{}: {} vs {}",
            what,
            a,
            b
        );
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// Forward against the definition, and with a bias and `relu` fused; ⟨conv(x, w), g⟩ =
    /// ⟨x, input_grad(g, w)⟩ = ⟨w, weight_grad(x, g)⟩; the weight gradients of chunks of 1,
    /// 2 and all images agree.
    #[test]
    fn kernels_are_adjoint_and_chunking_agrees(
        (xs, ws, stride, padding, dilation, groups) in geometries(),
        seed in any::<u64>(),
    ) {
        let (g, ys) = Conv2dGeometry::new(&xs, &ws, stride, padding, dilation, groups)
            .expect("valid by construction");
        let (x, w, up) = (filled(xs, seed), filled(ws, seed ^ 1), filled(ys, seed ^ 2));
        let y = conv2d_forward(x.view(), w.view(), &g);
        let want = naive_forward(&x.view(), &w.view(), &g);
        assert_near("forward", &y, &want)?;
        let bias: Vec<f64> = (0..ws[0]).map(|o| o as f64 * 0.3 - 0.5).collect();
        for relu in [false, true] {
            let fused = conv2d_forward_fused(x.view(), w.view(), Epilogue { bias: Some(&bias), relu }, &g);
            let mut want = want.clone();
            for ((_, o, _, _), v) in want.indexed_iter_mut() {
                *v += bias[o];
                if relu {
                    *v = v.max(0.0);
                }
            }
            assert_near("forward with bias and relu", &fused, &want)?;
        }
        let dx = conv2d_input_grad(up.view(), w.view(), xs, &g);
        let dw = conv2d_weight_grad(x.view(), up.view(), ws, &g);
        let (lhs, via_x, via_w) = (dot(&y, &up), dot(&x, &dx), dot(&w, &dw));
        let scale = 1e-10 * (1.0 + lhs.abs());
        prop_assert!((lhs - via_x).abs() <= scale, "{lhs} vs ⟨x, dx⟩ {via_x}");
        prop_assert!((lhs - via_w).abs() <= scale, "{lhs} vs ⟨w, dw⟩ {via_w}");
        for chunk in [1, 2, xs[0]] {
            assert_near("weight grad", &weight_grad_chunked(x.view(), up.view(), ws, &g, chunk), &dw)?;
        }
    }
}

/// The three kernels' results on `threads` threads, as bits, in f64 and f32 (the weight
/// gradient for chunks of 1, 5 and the budget's).
fn results_on(threads: usize, xs: [usize; 4], ws: [usize; 4]) -> Vec<Vec<u64>> {
    let (g, ys) = Conv2dGeometry::new(&xs, &ws, [1, 1], [1, 1], [1, 1], 1).unwrap();
    let (x, w, up) = (filled(xs, 3), filled(ws, 4), filled(ys, 5));
    let (x32, w32, up32) = (
        x.mapv(|v| v as f32),
        w.mapv(|v| v as f32),
        up.mapv(|v| v as f32),
    );
    let bits32 = |a: Array4<f32>| a.iter().map(|v| u64::from(v.to_bits())).collect();
    on_threads(threads, || {
        let mut out = vec![
            bits(&conv2d_forward(x.view(), w.view(), &g)),
            bits(&conv2d_input_grad(up.view(), w.view(), xs, &g)),
            bits32(conv2d_forward(x32.view(), w32.view(), &g)),
            bits32(conv2d_input_grad(up32.view(), w32.view(), xs, &g)),
        ];
        for chunk in [1, 5, images_per_chunk::<f32>(&g, COLUMN_BUDGET_BYTES)] {
            out.push(bits(&weight_grad_chunked(
                x.view(),
                up.view(),
                ws,
                &g,
                chunk,
            )));
            out.push(bits32(weight_grad_chunked(
                x32.view(),
                up32.view(),
                ws,
                &g,
                chunk,
            )));
        }
        out
    })
}

/// The Fashion-MNIST layers, with enough work for the two halves: the same bits on one and
/// two threads; transposed (non-standard) views give the same bits.
#[test]
fn the_cnn_layers_give_the_same_bits_on_one_and_two_threads() {
    for (xs, ws) in [
        ([12, 1, 28, 28], [32, 1, 3, 3]),
        ([12, 32, 14, 14], [64, 32, 3, 3]),
        ([33, 32, 14, 14], [64, 32, 3, 3]),
    ] {
        let (g, _) = Conv2dGeometry::new(&xs, &ws, [1, 1], [1, 1], [1, 1], 1).unwrap();
        assert!(Plan::new(&g, xs[0], 5).mid.is_some(), "{xs:?} splits");
        let (one, two) = (results_on(1, xs, ws), results_on(2, xs, ws));
        for (i, (a, b)) in one.iter().zip(&two).enumerate() {
            assert!(a == b, "{xs:?}: result {i} differs between 1 and 2 threads");
        }
        let (x, w) = (filled(xs, 3), filled(ws, 4));
        let xt = x
            .view()
            .permuted_axes([0, 1, 3, 2])
            .as_standard_layout()
            .into_owned();
        let xt = xt.view().permuted_axes([0, 1, 3, 2]);
        assert_eq!(
            bits(&conv2d_forward(xt, w.view(), &g)),
            bits(&conv2d_forward(x.view(), w.view(), &g))
        );
    }
}

#[test]
fn geometry_errors() {
    use Conv2dError as E;
    let new = |x: &[usize], w: &[usize], s, p, d, groups| {
        Conv2dGeometry::new(x, w, s, p, d, groups).map(|(_, shape)| shape)
    };
    let one = [1, 1];
    assert_eq!(
        new(&[2, 3, 5, 6], &[4, 3, 3, 3], one, [0, 0], one, 1),
        Ok([2, 4, 3, 4])
    );
    assert_eq!(
        new(&[1, 1, 28, 28], &[32, 1, 3, 3], one, one, one, 1),
        Ok([1, 32, 28, 28])
    );
    assert_eq!(
        new(&[1, 2, 7, 6], &[3, 2, 3, 3], [2, 2], one, one, 1),
        Ok([1, 3, 4, 3])
    );
    assert_eq!(
        new(&[1, 2, 7, 7], &[2, 2, 3, 3], one, [0, 0], [2, 2], 1),
        Ok([1, 2, 3, 3])
    );
    assert_eq!(
        new(&[3, 5, 5], &[4, 3, 3, 3], one, one, one, 1),
        Err(E::InputRank(vec![3, 5, 5]))
    );
    assert_eq!(
        new(&[1, 3, 5, 5], &[4, 3, 3], one, one, one, 1),
        Err(E::WeightRank(vec![4, 3, 3]))
    );
    assert_eq!(
        new(&[1, 3, 5, 5], &[4, 3, 3, 3], [1, 0], one, one, 1),
        Err(E::ZeroStride([1, 0]))
    );
    assert_eq!(
        new(&[1, 3, 5, 5], &[4, 3, 3, 3], one, one, [0, 1], 1),
        Err(E::ZeroDilation([0, 1]))
    );
    assert_eq!(
        new(&[1, 3, 5, 5], &[3, 1, 3, 3], one, one, one, 0),
        Err(E::ZeroGroups)
    );
    assert_eq!(
        new(&[1, 3, 5, 5], &[4, 3, 0, 3], one, one, one, 1),
        Err(E::EmptyKernel([0, 3]))
    );
    assert_eq!(
        new(&[1, 3, 5, 5], &[4, 1, 3, 3], one, one, one, 2),
        Err(E::InChannelsNotDivisible {
            channels: 3,
            groups: 2
        })
    );
    assert_eq!(
        new(&[1, 4, 5, 5], &[3, 2, 3, 3], one, one, one, 2),
        Err(E::OutChannelsNotDivisible {
            channels: 3,
            groups: 2
        })
    );
    assert_eq!(
        new(&[1, 4, 5, 5], &[4, 4, 3, 3], one, one, one, 2),
        Err(E::WeightChannels {
            expected: 2,
            got: 4
        })
    );
    assert_eq!(
        new(&[1, 3, 2, 9], &[4, 3, 5, 3], one, one, one, 1),
        Err(E::KernelTooLarge {
            axis: "height",
            extent: 5,
            padded: 4
        })
    );
    assert_eq!(
        new(&[1, 3, 9, 4], &[4, 3, 3, 3], one, [0, 0], [1, 2], 1),
        Err(E::KernelTooLarge {
            axis: "width",
            extent: 5,
            padded: 4
        })
    );
    let message = new(&[1, 4, 5, 5], &[4, 4, 3, 3], one, one, one, 2)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("4 input channels per group") && message.contains("give 2"),
        "{message}"
    );
}
