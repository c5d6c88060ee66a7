//! A literal, element-by-element transcription of the algorithms in PyTorch's
//! documentation, written independently of the crate's implementation.

use super::Cfg;

#[derive(Clone, Debug, Default)]
pub struct Slot {
    t: u64,
    m: Vec<f64>,
    v: Vec<f64>,
    extra: Vec<f64>,
}

/// One step of one parameter with learning rate `lr`.
pub fn step(cfg: &Cfg, lr: f64, p: &mut [f64], g: &[f64], slot: &mut Option<Slot>) {
    let n = p.len();
    let fresh = slot.is_none();
    let s = slot.get_or_insert_with(|| Slot {
        t: 0,
        m: vec![0.0; n],
        v: vec![0.0; n],
        extra: vec![0.0; n],
    });
    s.t += 1;
    let t = s.t as f64;
    match cfg {
        Cfg::Sgd(c) => {
            for i in 0..n {
                let mut g = g[i];
                if c.weight_decay != 0.0 {
                    g += c.weight_decay * p[i];
                }
                if c.momentum != 0.0 {
                    let b = &mut s.m[i];
                    *b = if fresh {
                        g
                    } else {
                        c.momentum * *b + (1.0 - c.dampening) * g
                    };
                    g = if c.nesterov { g + c.momentum * *b } else { *b };
                }
                p[i] -= lr * g;
            }
        }
        Cfg::Adam(_) | Cfg::AdamW(_) => {
            let (b1, b2, eps, wd, amsgrad, decoupled) = match cfg {
                Cfg::Adam(c) => (
                    c.betas.0,
                    c.betas.1,
                    c.eps,
                    c.weight_decay,
                    c.amsgrad,
                    false,
                ),
                Cfg::AdamW(c) => (c.betas.0, c.betas.1, c.eps, c.weight_decay, c.amsgrad, true),
                _ => unreachable!(),
            };
            for i in 0..n {
                let mut g = g[i];
                if decoupled {
                    p[i] -= lr * wd * p[i];
                } else if wd != 0.0 {
                    g += wd * p[i];
                }
                s.m[i] = b1 * s.m[i] + (1.0 - b1) * g;
                s.v[i] = b2 * s.v[i] + (1.0 - b2) * g * g;
                let m_hat = s.m[i] / (1.0 - b1.powf(t));
                let v_hat = if amsgrad {
                    s.extra[i] = s.extra[i].max(s.v[i]);
                    s.extra[i] / (1.0 - b2.powf(t))
                } else {
                    s.v[i] / (1.0 - b2.powf(t))
                };
                p[i] -= lr * m_hat / (v_hat.sqrt() + eps);
            }
        }
        Cfg::RmsProp(c) => {
            for i in 0..n {
                let mut g = g[i];
                if c.weight_decay != 0.0 {
                    g += c.weight_decay * p[i];
                }
                s.v[i] = c.alpha * s.v[i] + (1.0 - c.alpha) * g * g;
                let mut v_tilde = s.v[i];
                if c.centered {
                    s.extra[i] = c.alpha * s.extra[i] + (1.0 - c.alpha) * g;
                    v_tilde -= s.extra[i] * s.extra[i];
                }
                if c.momentum > 0.0 {
                    s.m[i] = c.momentum * s.m[i] + g / (v_tilde.sqrt() + c.eps);
                    p[i] -= lr * s.m[i];
                } else {
                    p[i] -= lr * g / (v_tilde.sqrt() + c.eps);
                }
            }
        }
        Cfg::Adagrad(c) => {
            if fresh {
                s.v = vec![c.initial_accumulator_value; n];
            }
            let clr = lr / (1.0 + (t - 1.0) * c.lr_decay);
            for i in 0..n {
                let mut g = g[i];
                if c.weight_decay != 0.0 {
                    g += c.weight_decay * p[i];
                }
                s.v[i] += g * g;
                p[i] -= clr * g / (s.v[i].sqrt() + c.eps);
            }
        }
    }
}

pub fn run(
    cfg: &Cfg,
    base_lr: f64,
    init: &[Vec<f64>; 2],
    steps: &[super::StepInput],
) -> Vec<Vec<Vec<f64>>> {
    let mut params = init.to_vec();
    let mut slots: Vec<Option<Slot>> = vec![None, None];
    steps
        .iter()
        .map(|st| {
            for k in 0..2 {
                if let Some(g) = &st.grads[k] {
                    step(cfg, base_lr * st.lr_scale, &mut params[k], g, &mut slots[k]);
                }
            }
            params.clone()
        })
        .collect()
}
