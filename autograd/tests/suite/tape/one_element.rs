//! One-element values are stored inline and differentiated on plain numbers; these tests
//! pin that path to the array path and to finite differences.

use ndarray::{ArrayD, IxDyn, array};
use tapegrad_autograd::Tape;

use super::{ignore, panic_message, scalar};

#[test]
fn one_element_values_mixed_with_arrays_pass_gradcheck() {
    use tapegrad_autograd::{GradcheckOptions, gradcheck};
    let inputs = [
        scalar(0.3),                                           // 0-d
        array![[1.7]].into_dyn(),                              // shape [1, 1]
        array![[0.5, -1.0, 2.0], [0.1, 0.2, -0.3]].into_dyn(), // an array
    ];
    gradcheck(
        |_, v| {
            let (a, b, m) = (v[0], v[1], v[2]);
            // One-element chain (a, b), then `a` broadcast into an array op as well, and a
            // reduction (one element again) feeding one-element ops.
            let s = ((a * b).tanh() + a.exp() / b - a.sigmoid() * 2.0).powi(2);
            let t = (m * a).sum() * b + m.sum().sin();
            (s * t).relu() + (s - t).abs() + a.clamp(-1.0, 1.0) * b.sqrt().ln()
        },
        &inputs,
        &GradcheckOptions::default(),
    )
    .unwrap();
}

#[test]
fn one_element_results_keep_the_broadcast_shape_and_second_order_works() {
    let tape = Tape::<f64>::new();
    let a = tape.var(scalar(2.0));
    let b = tape.var(array![[3.0]].into_dyn());
    let y = a * b; // [] * [1, 1] -> [1, 1]
    assert_eq!(y.shape(), vec![1, 1]);
    assert_eq!(y.to_array(), array![[6.0]].into_dyn());
    assert_eq!(y.item(), 6.0);
    // Gradients get their inputs' shapes.
    let grads = (y * y).backward();
    assert_eq!(grads.get(a).unwrap(), &scalar(2.0 * 6.0 * 3.0));
    assert_eq!(grads.get(b).unwrap(), &array![[2.0 * 6.0 * 2.0]].into_dyn());
    // And the recorded (differentiable) path agrees: d²(a³)/da² = 6a.
    let cube = a.powi(3);
    let da = tape.grad(cube, &[a])[0];
    let d2a = tape.grad(da, &[a])[0];
    assert_eq!(d2a.item(), 12.0);
}

#[test]
fn a_one_element_value_used_by_array_ops_and_scalar_ops_gets_both_gradients() {
    let tape = Tape::<f64>::new();
    let a = tape.var(scalar(0.5));
    let m = tape.constant(array![1.0, 2.0, 3.0].into_dyn());
    // `a` receives a gradient from an array op (as an array) and from scalar ops (as a
    // number), in both orders along the sweep.
    let y = (m * a).sum() + a * a + (a.exp() * m).sum();
    let g = y.backward().get(a).unwrap()[[]];
    let want = 6.0 + 2.0 * 0.5 + 0.5_f64.exp() * 6.0;
    assert!((g - want).abs() < 1e-12, "{g} vs {want}");
}

#[test]
fn anomaly_mode_names_the_op_whose_one_element_backward_produced_infinity() {
    let tape = Tape::<f64>::new();
    tape.set_anomaly_detection(true);
    let x = tape.var(scalar(0.0));
    let y = x.sqrt() * 2.0;
    let message = panic_message(|| ignore(y.backward()));
    assert!(message.contains("backward of `sqrt`"), "{message}");
}

#[test]
fn a_one_element_operand_broadcast_over_an_array_gets_the_sum_of_its_gradient() {
    // Every way a one-element operand can broadcast (no axes, and one to three axes of 1,
    // some of them over axes of 1 in the other operand), by `backward` (arrays) and by
    // `Tape::grad` (recorded operations, for higher-order use).
    for big in [vec![6, 1], vec![2, 3, 1], vec![4, 5], vec![1, 1]] {
        for small in [vec![], vec![1], vec![1, 1], vec![1, 1, 1]] {
            let n: usize = big.iter().product();
            let c = ArrayD::from_shape_vec(
                IxDyn(&big),
                (0..n).map(|i| (i as f64 * 0.37).sin()).collect(),
            )
            .unwrap();
            let want: f64 = c.sum();
            let tape = Tape::new();
            let a = tape.var(ArrayD::from_elem(IxDyn(&big), 0.5));
            let b = tape.var(ArrayD::from_elem(IxDyn(&small), 2.0));
            let weights = tape.constant(c.clone());
            let sum = ((a + b) * weights).sum();
            let diff = ((a - b) * weights).sum();
            for (loss, sign) in [(sum, 1.0), (diff, -1.0)] {
                let by_graph = tape.grad(loss, &[b])[0].to_array();
                assert_eq!(by_graph.shape(), &small[..], "{big:?} and {small:?}");
                assert!((by_graph.sum() - sign * want).abs() < 1e-12);
            }
            let grads = (sum + diff).backward();
            let gb = &grads[b];
            assert_eq!(gb.shape(), &small[..], "{big:?} and {small:?}");
            assert!(
                gb.iter().all(|&g| g.abs() < 1e-12),
                "the two sums cancel: {gb}"
            );
            let grads = sum.backward();
            assert!((grads[b].sum() - want).abs() < 1e-12);
            assert_eq!(grads[a], c);
        }
    }
}
