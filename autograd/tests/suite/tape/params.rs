//! Parameters and `Grads`: lookup by variable and by parameter, one gradient per parameter
//! however often it is bound, binding without copies, and editing and accumulating `Grads`.

use ndarray::{ArrayD, IxDyn, array};
use tapegrad_autograd::{Grads, Param, ParamId, Tape};

use super::thread_live_bytes;

#[test]
fn grads_are_indexed_by_var_and_by_param_and_outlive_the_tape() {
    let w = Param::new("w", array![[1.0, 2.0], [3.0, 4.0]].into_dyn());
    let b = Param::new("b", array![0.5, -0.5].into_dyn());
    let (grads, x_grad) = {
        let tape = Tape::new();
        let x = tape.var(array![[1.0, -1.0]].into_dyn());
        let y = (x.matmul(tape.param(&w)) + tape.param(&b)).sum();
        let grads = y.backward();
        let x_grad = grads[x].clone();
        (grads, x_grad)
    }; // the tape is gone; the parameters' gradients remain
    // y = Σⱼ (Σᵢ xᵢ wᵢⱼ + bⱼ): ∂y/∂w = xᵀ 1, ∂y/∂b = 1, ∂y/∂x = w 1
    assert_eq!(grads[&w], array![[1.0, 1.0], [-1.0, -1.0]].into_dyn());
    assert_eq!(grads[&b], array![1.0, 1.0].into_dyn());
    assert_eq!(grads.param(&w), grads.by_id(w.id()));
    assert_eq!(x_grad, array![[3.0, 7.0]].into_dyn());
    assert_eq!(grads.num_params(), 2);
}

#[test]
fn a_parameter_bound_twice_gets_one_summed_gradient() {
    let p = Param::new("p", array![2.0, -3.0].into_dyn());
    let tape = Tape::new();
    let first = tape.param(&p);
    let second = tape.param(&p);
    assert_eq!(first.index(), second.index());
    // d/dp (p · p + 3p) = 2p + 3
    let grads = (first * second + second * 3.0).sum().backward();
    assert_eq!(grads[&p], array![7.0, -3.0].into_dyn());
    assert_eq!(grads.num_params(), 1);
}

#[test]
fn a_parameter_first_bound_inside_no_grad_still_gets_its_gradient_outside() {
    let p = Param::new("p", array![2.0, -3.0].into_dyn());
    let tape = Tape::new();
    let evaluated = tape.no_grad(|| (tape.param(&p) * 2.0).sum());
    assert!(!evaluated.requires_grad());
    let loss = (tape.param(&p) * tape.param(&p)).sum();
    assert!(loss.requires_grad());
    assert_eq!(loss.backward()[&p], array![4.0, -6.0].into_dyn());
}

#[test]
fn binding_a_parameter_does_not_copy_its_data() {
    let big = Param::new("big", ArrayD::<f64>::ones(IxDyn(&[1000, 1000])));
    let param_bytes = 1000 * 1000 * std::mem::size_of::<f64>();
    let tape = Tape::new();
    let before_bytes = thread_live_bytes();
    let w = tape.param(&big);
    let allocated = thread_live_bytes() - before_bytes;
    assert!(allocated < 64 * 1024, "binding allocated {allocated} bytes");
    assert!(
        tape.memory_bytes() < param_bytes / 100,
        "memory_bytes {} after binding an 8 MB parameter",
        tape.memory_bytes()
    );
    // ... while a computed value of the same size is owned and counted.
    let _doubled = w * 2.0;
    assert!(tape.memory_bytes() >= param_bytes);
}

#[test]
fn grads_edited_by_hand_keep_each_parameters_gradient_apart() {
    let (a, b, c) = (ParamId::fresh(), ParamId::fresh(), ParamId::fresh());
    let mut grads = Grads::<f64>::new();
    grads.insert(a, array![1.0].into_dyn());
    grads.insert(b, array![2.0].into_dyn());
    assert_eq!(grads.remove(a), Some(array![1.0].into_dyn()));
    grads.insert(c, array![3.0].into_dyn());
    assert_eq!(grads.by_id(b), Some(&array![2.0].into_dyn()));
    assert_eq!(grads.by_id(c), Some(&array![3.0].into_dyn()));
    assert_eq!(grads.by_id(a), None);
    assert_eq!(grads.num_params(), 2);
    grads.insert(b, array![5.0].into_dyn()); // replaces
    *grads.by_id_mut(c).unwrap() *= 2.0;
    let mut all: Vec<(u64, f64)> = grads.params().map(|(id, g)| (id.get(), g[[0]])).collect();
    all.sort_by_key(|&(id, _)| id);
    assert_eq!(all, vec![(b.get(), 5.0), (c.get(), 6.0)]);
}

#[test]
fn grads_of_two_steps_accumulate_parameter_by_parameter() {
    let w = Param::new("w", array![1.0, 2.0].into_dyn());
    let v = Param::new("v", array![3.0].into_dyn());
    let step = |scale: f64| {
        let tape = Tape::new();
        ((tape.param(&w) * scale).sum() + tape.param(&v).sum()).backward()
    };
    let mut total = step(1.0);
    let second = step(2.0);
    total.accumulate(&second);
    assert_eq!(total[&w], array![3.0, 3.0].into_dyn());
    assert_eq!(total[&v], array![2.0].into_dyn());
    let mut by_hand = Grads::new();
    by_hand.accumulate(&second);
    assert_eq!(by_hand[&w], array![2.0, 2.0].into_dyn());
    assert_eq!(by_hand.num_params(), 2);
}
