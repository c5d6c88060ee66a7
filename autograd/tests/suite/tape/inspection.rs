//! Inspection: `tape.len()` counts the recorded nodes and `to_dot` draws the output's graph.

use ndarray::array;
use tapegrad_autograd::{Param, Tape};

#[test]
fn tape_len_counts_every_recorded_node_and_to_dot_shows_ops_and_edges() {
    let tape = Tape::<f64>::new();
    assert!(tape.is_empty());
    let x = tape.var(array![1.0, 2.0].into_dyn()); // #0
    let w = Param::new("w", array![0.5, -0.5].into_dyn());
    let wv = tape.param(&w); // #1
    let _unused = x.exp(); // #2, not on the path to the output
    let y = (x * wv).tanh().sum(); // #3 mul, #4 tanh, #5 sum
    assert_eq!(tape.len(), 6);
    let dot = tape.to_dot(y);
    assert!(dot.starts_with("digraph"), "{dot}");
    for name in ["leaf", "param", "mul", "tanh", "sum"] {
        assert!(dot.contains(name), "`{name}` missing from\n{dot}");
    }
    for edge in ["n0 -> n3", "n1 -> n3", "n3 -> n4", "n4 -> n5"] {
        assert!(dot.contains(edge), "edge `{edge}` missing from\n{dot}");
    }
    assert!(
        !dot.contains("exp"),
        "an op off the output's path is drawn:\n{dot}"
    );
}
