//! Padded batches: each row run alone gives the batch's outputs, final states and
//! gradients, padded positions are exactly zero, and padding values change nothing.

use super::*;

/// The rows of a padded batch, each run alone over its own valid steps, give the batch's
/// outputs (zeros past each row's length), final states and gradients (of x, h0, c0 and
/// every parameter); other padding values change nothing at all.
#[test]
fn padded_steps_change_nothing() {
    let lengths = [4, 1, 3];
    let steps = 4;
    for kind in [Kind::Rnn(Nonlinearity::Relu), Kind::Lstm, Kind::Gru] {
        for batch_first in [true, false] {
            for (num_layers, bidirectional) in [(1, true), (2, false), (2, true)] {
                let config = Config {
                    kind,
                    input_size: 3,
                    hidden_size: 2,
                    num_layers,
                    bidirectional,
                    batch_first,
                    bias: true,
                };
                check_padding(&config, &lengths, steps);
            }
        }
    }
}

/// The outputs and the gradients (inputs first, then parameters) of one run, with
/// `upstream` weights for `Σ sum(output · upstream)` drawn from `seed`.
fn outputs_and_gradients(
    layer: &AnyRecurrent,
    values: &[ArrayD<f64>],
    lengths: Option<&[usize]>,
    upstream_seed: u64,
) -> (Vec<ArrayD<f64>>, Vec<ArrayD<f64>>) {
    let tape = Tape::new();
    let mut vars: Vec<Var<'_, f64>> = values.iter().map(|v| tape.var(v.clone())).collect();
    let outputs = layer.run(vars[0], lengths, Some(vars[1]), vars.get(2).copied());
    let rng = &mut StdRng::seed_from_u64(upstream_seed);
    let loss = outputs
        .iter()
        .map(|o| (*o * tape.constant(uniform(&o.shape(), rng))).sum())
        .reduce(|a, b| a + b)
        .unwrap();
    vars.extend(layer.module().params().into_iter().map(|p| tape.param(p)));
    let grads = tape
        .grad(loss, &vars)
        .iter()
        .map(|g| g.to_array())
        .collect();
    (outputs.iter().map(|o| o.to_array()).collect(), grads)
}

fn check_padding(config: &Config, lengths: &[usize], steps: usize) {
    let what = format!("{config:?}");
    let layer = AnyRecurrent::new(config, 7);
    let batch = lengths.len();
    let values = inputs(config, batch, steps, 11);
    let (time_axis, batch_axis) = if config.batch_first { (1, 0) } else { (0, 1) };
    // Row b as a batch of one over its own steps; its upstream weights are the batch's
    // (drawn per output in the same shapes), so the batch's loss is the sum of the rows'.
    let padded = outputs_and_gradients(&layer, &values, Some(lengths), 3);
    let (batch_outputs, batch_grads) = &padded;

    // Other padding values: bit-identical outputs and gradients.
    let mut repadded = values[0].clone();
    for (b, &len) in lengths.iter().enumerate() {
        // Without its batch axis, a row is [T, I] in either layout.
        let mut row = repadded.index_axis_mut(Axis(batch_axis), b);
        row.slice_axis_mut(Axis(0), (len..steps).into())
            .mapv_inplace(|v| 1e3 * v + 5.0);
    }
    let mut other = values.clone();
    other[0] = repadded;
    assert_eq!(
        outputs_and_gradients(&layer, &other, Some(lengths), 3),
        padded,
        "{what}: other padding values"
    );

    // The rows alone. The batch's upstream weights are drawn in the batch's shapes, so the
    // rows' losses use the same weights through `row_of`.
    let rng = &mut StdRng::seed_from_u64(3);
    let upstream: Vec<ArrayD<f64>> = batch_outputs
        .iter()
        .map(|o| uniform(o.shape(), rng))
        .collect();
    let mut summed: Vec<ArrayD<f64>> = batch_grads[values.len()..]
        .iter()
        .map(|g| ArrayD::zeros(g.shape()))
        .collect();
    for (b, &len) in lengths.iter().enumerate() {
        let row_values: Vec<ArrayD<f64>> = values
            .iter()
            .enumerate()
            .map(|(k, v)| {
                let (axis, end) = if k == 0 { (batch_axis, len) } else { (1, 0) };
                let row = v.slice_axis(Axis(axis), (b..b + 1).into()).to_owned();
                if k == 0 {
                    row.slice_axis(Axis(time_axis), (0..end).into()).to_owned()
                } else {
                    row
                }
            })
            .collect();
        let tape = Tape::new();
        let mut vars: Vec<Var<'_, f64>> = row_values.iter().map(|v| tape.var(v.clone())).collect();
        let outputs = layer.run(vars[0], None, Some(vars[1]), vars.get(2).copied());
        let mut loss = None;
        for (k, (out, weights)) in outputs.iter().zip(&upstream).enumerate() {
            // The output's batch axis is the input's; the states' is axis 1.
            let axis = if k == 0 { batch_axis } else { 1 };
            let mut w = weights.slice_axis(Axis(axis), (b..b + 1).into()).to_owned();
            if k == 0 {
                w = w.slice_axis(Axis(time_axis), (0..len).into()).to_owned();
                // The batch's output for the row: its valid steps, then zeros.
                let got = batch_outputs[0].slice_axis(Axis(batch_axis), (b..b + 1).into());
                assert_near(
                    &format!("{what} row {b} output"),
                    &got.slice_axis(Axis(time_axis), (0..len).into()).to_owned(),
                    &out.to_array(),
                );
                let padding = got.slice_axis(Axis(time_axis), (len..steps).into());
                assert!(
                    padding.iter().all(|&v| v == 0.0),
                    "{what} row {b}: padding output"
                );
            } else {
                let got = batch_outputs[k]
                    .slice_axis(Axis(1), (b..b + 1).into())
                    .to_owned();
                assert_near(&format!("{what} row {b} state {k}"), &got, &out.to_array());
            }
            let term = (*out * tape.constant(w)).sum();
            loss = Some(loss.map_or(term, |l| l + term));
        }
        vars.extend(layer.module().params().into_iter().map(|p| tape.param(p)));
        let grads = tape.grad(loss.unwrap(), &vars);
        for (k, g) in grads.iter().enumerate().take(values.len()) {
            let axis = if k == 0 { batch_axis } else { 1 };
            let got = batch_grads[k]
                .slice_axis(Axis(axis), (b..b + 1).into())
                .to_owned();
            if k == 0 {
                let valid = got.slice_axis(Axis(time_axis), (0..len).into()).to_owned();
                assert_near(
                    &format!("{what} row {b} gradient of x"),
                    &valid,
                    &g.to_array(),
                );
                let padding = got.slice_axis(Axis(time_axis), (len..steps).into());
                assert!(
                    padding.iter().all(|&v| v == 0.0),
                    "{what} row {b}: padding gradient"
                );
            } else {
                assert_near(
                    &format!("{what} row {b} gradient of state {k}"),
                    &got,
                    &g.to_array(),
                );
            }
        }
        for (sum, g) in summed.iter_mut().zip(&grads[values.len()..]) {
            *sum += &g.to_array();
        }
    }
    for (k, (got, want)) in batch_grads[values.len()..].iter().zip(&summed).enumerate() {
        assert_near(&format!("{what} gradient of parameter {k}"), got, want);
    }
}
