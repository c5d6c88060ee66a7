//! The ONNX rules of the recurrent layers and cells: one ONNX `RNN`, `LSTM` or `GRU` node
//! per layer of a stack (both directions in one node), reading the parameters as they are
//! stored (PyTorch's layout and gate order) and reordering the gates into ONNX's with
//! `Gather` nodes that runtimes fold once.

use ndarray::ArrayD;
use tapegrad_autograd::Float;

use super::params::{CellKind, CellParams, Nonlinearity};
use super::stacked::Stacked;
use crate::module::InvalidInputShape;
use crate::onnx::{ExportError, OnnxGraph, OnnxValue, attr};

/// For each of ONNX's gates in its order, the index of the gate of the same role in
/// tapegrad's (PyTorch's) order: LSTM `i, o, f, c` from `i, f, g, o`; GRU `z, r, h` from
/// `r, z, n`.
fn gate_order(kind: CellKind) -> &'static [usize] {
    match kind {
        CellKind::Rnn(_) => &[0],
        CellKind::Lstm => &[0, 3, 1, 2],
        CellKind::Gru => &[1, 0, 2],
    }
}

/// One ONNX recurrent node over `seq` (`[T, N, I]`) for the cells of one layer (one per
/// direction, forward first), from zero states: its outputs `Y` (`[T, D, N, H]`) and
/// `Y_h` (`[D, N, H]`). `kind` names the layer in errors.
fn layer<T: Float>(
    graph: &mut OnnxGraph<T>,
    seq: &str,
    cells: &[CellParams<T>],
    kind: &str,
) -> Result<(String, String), ExportError> {
    let cell_kind = cells[0].kind;
    let (hidden, directions) = (cells[0].hidden_size, cells.len());
    let gates = (cell_kind.gates() * hidden) as i64;
    let rows: Vec<i64> = gate_order(cell_kind)
        .iter()
        .flat_map(|&g| (g * hidden..(g + 1) * hidden).map(|r| r as i64))
        .collect();
    let rows = graph.ints(&rows);
    let reordered = |graph: &mut OnnxGraph<T>, name: &str| {
        graph.node("Gather", &[name, &rows], vec![attr::int("axis", 0)])
    };
    let (mut w, mut r, mut b) = (Vec::new(), Vec::new(), Vec::new());
    for cell in cells {
        let (w_ih, w_hh, biases) = cell.weights().ok_or_else(|| ExportError::not_built(kind))?;
        let (w_ih, w_hh) = (graph.param(w_ih), graph.param(w_hh));
        let w_ih = reordered(graph, &w_ih);
        let w_hh = reordered(graph, &w_hh);
        w.push(graph.reshape(&w_ih, &[1, gates, cell.input_size as i64]));
        r.push(graph.reshape(&w_hh, &[1, gates, hidden as i64]));
        // ONNX's B is `[Wb, Rb]`: the input's biases, then the state's.
        let bias = match biases {
            Some((b_ih, b_hh)) => {
                let (b_ih, b_hh) = (graph.param(b_ih), graph.param(b_hh));
                let b_ih = reordered(graph, &b_ih);
                let b_hh = reordered(graph, &b_hh);
                graph.node("Concat", &[&b_ih, &b_hh], vec![attr::int("axis", 0)])
            }
            None => graph.constant(&ArrayD::zeros(vec![2 * gates as usize])),
        };
        b.push(graph.reshape(&bias, &[1, 2 * gates]));
    }
    let stacked = |graph: &mut OnnxGraph<T>, parts: Vec<String>| match parts.as_slice() {
        [one] => one.clone(),
        _ => {
            let parts: Vec<&str> = parts.iter().map(String::as_str).collect();
            graph.node("Concat", &parts, vec![attr::int("axis", 0)])
        }
    };
    let (w, r, b) = (stacked(graph, w), stacked(graph, r), stacked(graph, b));

    // Zero initial states `[D, N, H]`, the batch size read from `seq` at run time.
    let shape = graph.node("Shape", &[seq], vec![]);
    let batch_index = graph.ints(&[1]);
    let batch = graph.node(
        "Gather",
        &[&shape, &batch_index],
        vec![attr::int("axis", 0)],
    );
    let (d, h) = (
        graph.ints(&[directions as i64]),
        graph.ints(&[hidden as i64]),
    );
    let dims = graph.node("Concat", &[&d, &batch, &h], vec![attr::int("axis", 0)]);
    let zeros = graph.constant_of_shape(&dims, 0.0);

    let direction = if directions == 2 {
        "bidirectional"
    } else {
        "forward"
    };
    let mut attributes = vec![
        attr::int("hidden_size", hidden as i64),
        attr::string("direction", direction),
    ];
    let mut inputs = vec![seq, &w, &r, &b, "", &zeros];
    let (op, outputs) = match cell_kind {
        CellKind::Rnn(nonlinearity) => {
            let name = match nonlinearity {
                Nonlinearity::Tanh => "Tanh",
                Nonlinearity::Relu => "Relu",
            };
            attributes.push(attr::strings("activations", &vec![name; directions]));
            ("RNN", 2)
        }
        CellKind::Lstm => {
            inputs.push(&zeros);
            ("LSTM", 3)
        }
        CellKind::Gru => {
            // PyTorch's `n = tanh(W_in x + b_in + r ⊙ (W_hn h + b_hn))`.
            attributes.push(attr::int("linear_before_reset", 1));
            ("GRU", 2)
        }
    };
    let out = graph.node_with_outputs(op, &inputs, outputs, attributes);
    Ok((out[0].clone(), out[1].clone()))
}

/// The rule of [`Rnn`](super::Rnn), [`Lstm`](super::Lstm) and [`Gru`](super::Gru): the
/// batch-first input transposed to ONNX's `[T, N, I]`, one node per layer, and the output
/// of the one-tensor forward (the sequence, or the last layer's final states joined).
pub(crate) fn export_stacked<T: Float>(
    stacked: &Stacked<T>,
    graph: &mut OnnxGraph<T>,
    x: &OnnxValue,
) -> Result<OnnxValue, ExportError> {
    stacked.check_input_shape(&x.shape)?;
    let kind = stacked.kind.names(false).1;
    if !stacked.batch_first {
        return Err(ExportError::unexportable(
            kind,
            "time-major inputs (`batch_first(false)`) are not exported: the graph's first, \
             dynamic axis is the batch",
        ));
    }
    if stacked.cells.is_empty() {
        return Err(ExportError::not_built(kind));
    }
    let (d, width) = (stacked.directions(), stacked.output_size() as i64);
    let mut seq = graph.transpose(&x.name, &[1, 0, 2]);
    let mut last_states = String::new();
    let layers = stacked.cells.chunks(d).count();
    for (index, cells) in stacked.cells.chunks(d).enumerate() {
        let (y, y_h) = layer(graph, &seq, cells, kind)?;
        if index + 1 < layers || stacked.return_sequences {
            // `[T, D, N, H]` → `[T, N, D·H]`: the directions joined per step.
            let y = graph.transpose(&y, &[0, 2, 1, 3]);
            seq = graph.reshape(&y, &[0, 0, width]);
        }
        last_states = y_h;
    }
    if stacked.return_sequences {
        let y = graph.transpose(&seq, &[1, 0, 2]);
        return Ok(OnnxValue::new(y, vec![x.shape[0], stacked.output_size()]));
    }
    // `[D, N, H]` → `[N, D·H]`: the forward direction's final state, then the reverse's.
    let h = graph.transpose(&last_states, &[1, 0, 2]);
    let h = graph.reshape(&h, &[0, width]);
    Ok(OnnxValue::new(h, vec![stacked.output_size()]))
}

/// The rule of the cells ([`RnnCell`](super::RnnCell), …): one step from zero states, a
/// one-step sequence for ONNX's operator.
pub(crate) fn export_cell<T: Float>(
    params: &CellParams<T>,
    graph: &mut OnnxGraph<T>,
    x: &OnnxValue,
) -> Result<OnnxValue, ExportError> {
    let kind = params.kind.names(true).1;
    if x.shape != [params.input_size] {
        let expected = format!("[{}]", params.input_size);
        return Err(InvalidInputShape::new(kind, expected, &x.shape).into());
    }
    let seq = graph.reshape(&x.name, &[1, -1, params.input_size as i64]);
    let (_, y_h) = layer(graph, &seq, std::slice::from_ref(params), kind)?;
    let h = graph.reshape(&y_h, &[-1, params.hidden_size as i64]);
    Ok(OnnxValue::new(h, vec![params.hidden_size]))
}
