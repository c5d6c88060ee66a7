//! Shape errors: each names the op and the shapes, and points at the caller's line.

use ndarray::{ArrayD, IxDyn, array};
use tapegrad_autograd::{Tape, Var};

use super::{assert_panics_at_their_lines, ignore};

#[test]
#[should_panic(expected = "add: shapes [2, 3] and [4] cannot be broadcast together")]
fn add_of_incompatible_shapes_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[2, 3]))) + tape.var(ArrayD::zeros(IxDyn(&[4])));
}

#[test]
#[should_panic(expected = "matmul: shapes [2, 3] and [4, 5] are incompatible")]
fn matmul_of_mismatched_inner_dimensions_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .var(ArrayD::zeros(IxDyn(&[2, 3])))
        .matmul(tape.var(ArrayD::zeros(IxDyn(&[4, 5]))));
}

#[test]
#[should_panic(
    expected = "reshape: cannot reshape shape [2, 3] (6 elements) into shape [4, 2] (8 elements)"
)]
fn reshape_to_a_different_element_count_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[2, 3]))).reshape(&[4, 2]);
}

#[test]
#[should_panic(expected = "sum_axes: axis 2 is out of range for shape [2, 3]")]
fn sum_axes_with_an_axis_out_of_range_panics() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[2, 3]))).sum_axes([2], false);
}

#[test]
#[should_panic(expected = "softmax: axis -3 is out of range for shape [2, 3]")]
fn softmax_with_an_axis_out_of_range_panics_naming_softmax() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[2, 3]))).softmax(-3);
}

#[test]
#[should_panic(expected = "gather: index 4 is out of bounds for axis 1 of shape [3, 4]")]
fn gather_with_an_index_out_of_bounds_panics_naming_the_shape() {
    let tape = Tape::<f64>::new();
    let index = array![[0], [4], [1]].into_dyn();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[3, 4]))).gather(1, &index);
}

#[test]
#[should_panic(expected = "index_select: index 5 is out of bounds for axis 0 of shape [4, 3]")]
fn index_select_with_an_index_out_of_bounds_panics_naming_the_shape() {
    let tape = Tape::<f64>::new();
    let _ = tape
        .var(ArrayD::zeros(IxDyn(&[4, 3])))
        .index_select(0, &[1, 5]);
}

#[test]
#[should_panic(expected = "concat: shapes [2, 3] and [3, 2] differ outside axis 1")]
fn concat_of_shapes_that_differ_outside_the_axis_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let a = tape.var(ArrayD::zeros(IxDyn(&[2, 3])));
    let b = tape.var(ArrayD::zeros(IxDyn(&[3, 2])));
    let _ = Var::concat(&[a, b], 1);
}

#[test]
#[should_panic(expected = "backward: the output has shape [2, 3]")]
fn backward_of_a_non_scalar_output_without_a_seed_panics() {
    let tape = Tape::<f64>::new();
    let _ = (tape.var(ArrayD::zeros(IxDyn(&[2, 3]))) * 2.0).backward();
}

#[test]
#[should_panic(expected = "broadcast_to: shape [3] cannot be broadcast to shape [2, 4]")]
fn broadcast_to_an_incompatible_shape_panics_naming_both_shapes() {
    let tape = Tape::<f64>::new();
    let _ = tape.var(ArrayD::zeros(IxDyn(&[3]))).broadcast_to(&[2, 4]);
}

#[test]
#[should_panic(expected = "Grads::get: this variable was recorded on another tape")]
fn looking_up_a_gradient_with_a_variable_of_another_tape_panics() {
    let first = Tape::<f64>::new();
    let second = Tape::<f64>::new();
    let x = first.var(array![1.0].into_dyn());
    let y = second.var(array![1.0].into_dyn());
    let grads = (x * 2.0).sum().backward();
    let _ = grads.get(y);
}

#[test]
fn every_shape_error_is_reported_at_the_callers_line() {
    let tape = Tape::<f64>::new();
    let m23 = tape.var(ArrayD::zeros(IxDyn(&[2, 3])));
    let m45 = tape.var(ArrayD::zeros(IxDyn(&[4, 5])));
    let v4 = tape.var(ArrayD::zeros(IxDyn(&[4])));
    type Case<'a> = (Box<dyn Fn() + 'a>, u32, &'static str);
    // One line per case (a macro keeps rustfmt from splitting it): the op's call and
    // `line!()` share the line the panic must be reported at.
    macro_rules! case {
        ($op:literal, $e:expr) => {
            (Box::new(|| ignore($e)) as Box<dyn Fn()>, line!(), $op)
        };
    }
    let cases: Vec<Case<'_>> = vec![
        case!("add", m23 + v4),
        case!("mul", m23 * v4),
        case!("matmul", m23.matmul(m45)),
        case!("matmul", v4.matmul(m23)),
        case!("reshape", m23.reshape(&[5])),
        case!("sum_axes", m23.sum_axes(3, true)),
        case!("sum_axes", m23.sum_axes([0, -2], true)),
        case!("mean_axes", m23.mean_axes([-3], true)),
        case!("var_axes", m23.var_axes([2], true)),
        case!("max_axes", m23.max_axes(2, true)),
        case!("min_axes", m23.min_axes([0, -3], true)),
        case!("softmax", m23.softmax(2)),
        case!("log_softmax", m23.log_softmax(2)),
        case!("logsumexp", m23.logsumexp(2, true)),
        case!("gather", m23.gather(1, &array![[3], [0]].into_dyn())),
        case!("index_select", m23.index_select(0, &[2])),
        case!("concat", Var::concat(&[m23, m45], 0)),
        case!("backward", m23.backward()),
        case!("broadcast_to", v4.broadcast_to(&[4, 3])),
        case!("permute", m23.permute(&[0, 0])),
        case!("permute", m23.permute(&[0, -3])),
        case!("flatten_from", m23.flatten_from(2)),
        case!("unsqueeze", m23.unsqueeze(-4)),
        case!("stack", Var::stack(&[m23, m23], 3)),
        case!("transpose", m23.transpose(0, 2)),
        case!("slice", m23.slice(1, 2, 4)),
        case!("squeeze", m23.squeeze(0)),
        case!("item", m23.item()),
    ];
    let cases = cases
        .into_iter()
        .map(|(case, line, op)| (case, line, op, format!("{op}:")))
        .collect();
    assert_panics_at_their_lines(file!(), cases);
}
