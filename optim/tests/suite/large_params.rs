//! Parameters large enough to be checked and updated in two halves on two threads give
//! bit-for-bit the values and state of the same elements updated as small parameters
//! (which are updated in one piece), for every optimizer and each of its update kernels;
//! a non-finite gradient in either half still stops the step before anything changes.

use ndarray::{ArrayD, IxDyn};
use tapegrad_autograd::{Grads, Param};
use tapegrad_optim::{
    AdagradConfig, AdamConfig, AdamWConfig, OptimError, Optimizer, RmsPropConfig, SgdConfig,
};

/// Above the two-halves threshold (2¹⁵ elements) and odd, so the halves differ in length
/// and neither is a multiple of the vector width.
const LEN: usize = 3 * (1 << 14) + 7;
/// Below the threshold: the same elements as pieces of this many, updated in one piece each.
const PIECE: usize = 1000;

/// Runs `f` on a rayon pool of two threads, so the halves run side by side on any machine.
fn on_two_threads<R: Send>(f: impl FnOnce() -> R + Send) -> R {
    rayon::ThreadPoolBuilder::new()
        .num_threads(2)
        .build()
        .expect("a pool of two threads")
        .install(f)
}

/// Deterministic values in about [-2, 2), different for each `seed`.
fn values(seed: u64, len: usize) -> Vec<f64> {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..len)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state >> 11) as f64 / (1u64 << 53) as f64 * 4.0 - 2.0
        })
        .collect()
}

fn array(v: &[f64]) -> ArrayD<f32> {
    ArrayD::from_shape_vec(IxDyn(&[v.len()]), v.iter().map(|&x| x as f32).collect())
        .expect("a vector")
}

/// Builds a fresh optimizer of one configuration.
type Build = fn() -> Box<dyn Optimizer<f32>>;

/// One configuration per update kernel: its name and its builder.
fn configs() -> [(&'static str, Build); 8] {
    [
        ("sgd", || Box::new(SgdConfig::new(0.1).build().unwrap())),
        ("sgd, weight decay, Nesterov momentum", || {
            let c = SgdConfig {
                momentum: 0.9,
                nesterov: true,
                weight_decay: 0.01,
                ..SgdConfig::new(0.1)
            };
            Box::new(c.build().unwrap())
        }),
        ("adam", || Box::new(AdamConfig::new(0.01).build().unwrap())),
        ("adam, amsgrad, weight decay", || {
            let c = AdamConfig {
                amsgrad: true,
                weight_decay: 0.01,
                ..AdamConfig::new(0.01)
            };
            Box::new(c.build().unwrap())
        }),
        ("adamw", || {
            Box::new(AdamWConfig::new(0.01).build().unwrap())
        }),
        ("rmsprop", || {
            Box::new(RmsPropConfig::new(0.01).build().unwrap())
        }),
        ("rmsprop, centered, momentum", || {
            let c = RmsPropConfig {
                centered: true,
                momentum: 0.9,
                ..RmsPropConfig::new(0.01)
            };
            Box::new(c.build().unwrap())
        }),
        ("adagrad", || {
            Box::new(AdagradConfig::new(0.1).build().unwrap())
        }),
    ]
}

/// The values of `params` and every state buffer, concatenated in element order.
fn flatten(opt: &dyn Optimizer<f32>, params: &[Param<f32>]) -> (Vec<f32>, Vec<Vec<f32>>) {
    let mut value = Vec::new();
    let mut buffers: Vec<Vec<f32>> = Vec::new();
    for p in params {
        value.extend(p.value().iter().copied());
        let state = opt.param_state(p.id()).expect("state after a step");
        buffers.resize(state.buffers.len(), Vec::new());
        for (all, (_, buf)) in buffers.iter_mut().zip(&state.buffers) {
            all.extend(buf.iter().copied());
        }
    }
    (value, buffers)
}

fn step(opt: &mut dyn Optimizer<f32>, params: &mut [Param<f32>], grads: &[Vec<f64>]) {
    let mut g = Grads::new();
    for (p, v) in params.iter().zip(grads) {
        g.insert(p.id(), array(v));
    }
    opt.step(params.iter_mut(), &g).expect("finite gradients");
}

#[test]
fn halves_update_every_element_as_one_piece_does() {
    on_two_threads(|| {
        let init = values(1, LEN);
        for (name, build) in configs() {
            let (mut whole, mut pieces) = (build(), build());
            let mut big = vec![Param::new("w", array(&init))];
            let mut small: Vec<Param<f32>> = init
                .chunks(PIECE)
                .enumerate()
                .map(|(i, c)| Param::new(format!("w{i}"), array(c)))
                .collect();
            for t in 0..3 {
                let grad = values(10 + t, LEN);
                step(whole.as_mut(), &mut big, std::slice::from_ref(&grad));
                let grads: Vec<Vec<f64>> = grad.chunks(PIECE).map(<[f64]>::to_vec).collect();
                step(pieces.as_mut(), &mut small, &grads);
                let (big_value, big_state) = flatten(whole.as_ref(), &big);
                let (small_value, small_state) = flatten(pieces.as_ref(), &small);
                assert!(
                    big_value
                        .iter()
                        .zip(&small_value)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{name}, step {t}: values differ"
                );
                assert_ne!(
                    big_value,
                    array(&init).into_raw_vec_and_offset().0,
                    "{name}"
                );
                assert_eq!(big_state.len(), small_state.len(), "{name}");
                for (a, b) in big_state.iter().zip(&small_state) {
                    assert!(
                        a.iter().zip(b).all(|(a, b)| a.to_bits() == b.to_bits()),
                        "{name}, step {t}: state differs"
                    );
                }
            }
        }
    });
}

#[test]
fn a_non_finite_gradient_in_either_half_changes_nothing() {
    on_two_threads(|| {
        let init = values(2, LEN);
        for at in [0, LEN / 2 - 1, LEN / 2, LEN - 1] {
            for bad in [f64::NAN, f64::INFINITY] {
                let mut opt = SgdConfig::new(0.1).build().unwrap();
                let mut p = Param::new("w", array(&init));
                let mut grad = values(3, LEN);
                grad[at] = bad;
                let mut g = Grads::new();
                g.insert(p.id(), array(&grad));
                let err = opt.step([&mut p], &g).expect_err("a non-finite gradient");
                assert!(
                    matches!(err, OptimError::NonFiniteGradient { ref param } if param == "w"),
                    "{err}"
                );
                assert_eq!(*p.value(), array(&init), "at {at}");
            }
        }
    });
}
