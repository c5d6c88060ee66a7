//! Unit tests of `communicator`.

use super::*;

#[test]
fn single_process_leaves_buffers_and_checks_roots() {
    let comm = SingleProcess;
    let mut a = vec![1.0_f32, 2.0];
    let mut b = vec![3.0_f64];
    all_reduce_sum(&comm, &mut a).unwrap();
    all_reduce_sum(&comm, &mut b).unwrap();
    broadcast(&comm, &mut a, 0).unwrap();
    assert_eq!(a, [1.0, 2.0]);
    assert_eq!(b, [3.0]);
    assert!(matches!(
        broadcast(&comm, &mut b, 1),
        Err(CommError::InvalidRoot { root: 1, size: 1 })
    ));
    comm.barrier().unwrap();
    assert!(comm.is_root());
    assert_eq!(broadcast_message(&comm, "héllo", 0).unwrap(), "héllo");
}

#[test]
fn gradient_buffer_weights_ranks_by_rows() {
    use ndarray::array;
    let w = Param::new("w", array![[1.0_f64, 2.0]].into_dyn());
    let b = Param::new("b", array![0.0_f64].into_dyn());
    let grads = |g: f64| {
        let mut grads = Grads::new();
        grads.insert(w.id(), array![[g, -g]].into_dyn());
        grads
    };
    // Two "ranks": 3 rows with gradient 1, 1 row with gradient 5; b has none.
    let mut a = GradientBuffer::new(&[&w, &b]);
    let mut c = a.clone();
    a.pack(Some(&grads(1.0)), 3, 2.0, false);
    c.pack(Some(&grads(5.0)), 1, 6.0, true);
    for (x, y) in a.buf.iter_mut().zip(&c.buf) {
        *x += *y;
    }
    let totals = a.reduce(&SingleProcess).unwrap();
    assert_eq!(
        (totals.rows, totals.failed, totals.mean_loss()),
        (4, 1, 3.0)
    );
    let g = a.grads(totals.rows);
    assert_eq!(g[&w], array![[2.0, -2.0]].into_dyn());
    assert!(g.param(&b).is_none());
    // A rank without rows adds nothing.
    let mut empty = GradientBuffer::new(&[&w, &b]);
    empty.pack(None, 0, f64::NAN, false);
    assert!(empty.buf.iter().all(|&v| v == 0.0));
    assert_eq!(empty.len(), 2 + 1 + 2 + 3);
}

#[test]
fn batch_rows_and_shards_cover_everything_once() {
    for (n, size, per) in [(10, 3, 2), (7, 2, 4), (1, 4, 1), (0, 2, 3)] {
        let mut seen = Vec::new();
        for start in (0..n).step_by(per * size) {
            let end = (start + per * size).min(n);
            for r in 0..size {
                seen.extend(batch_rows(start, end, per, r));
            }
        }
        assert_eq!(seen, (0..n).collect::<Vec<_>>());
        let shards: Vec<usize> = (0..size).flat_map(|r| shard(n, r, size)).collect();
        assert_eq!(shards, (0..n).collect::<Vec<_>>());
    }
}

#[test]
fn broadcast_params_and_failures_on_one_process() {
    use ndarray::array;
    let mut w = Param::new("w", array![1.0_f32].into_dyn());
    broadcast_params(&SingleProcess, &mut [&mut w]).unwrap();
    assert_eq!(w.value(), &array![1.0_f32].into_dyn());
    assert_eq!(first_failed_rank(&SingleProcess, false).unwrap(), None);
    assert_eq!(first_failed_rank(&SingleProcess, true).unwrap(), Some(0));
}

#[test]
fn dyn_communicator_dispatches() {
    let comm: std::rc::Rc<dyn Communicator> = std::rc::Rc::new(SingleProcess);
    let mut a = vec![1.0_f64];
    all_reduce_sum(&*comm, &mut a).unwrap();
    assert_eq!(a, [1.0]);
}
