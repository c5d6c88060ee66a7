use ndarray::{ArrayD, array};
use tapegrad_autograd::{Param, Tape};

#[test]
fn smoke() {
    let tape = Tape::<f64>::new();
    let x = tape.var(array![1.0, 2.0, 3.0].into_dyn());
    let y = (x * x).sum();
    let g = y.backward();
    assert_eq!(g[x], array![2.0, 4.0, 6.0].into_dyn());
    let p = Param::new("w", ArrayD::<f64>::ones(vec![3, 2]));
    let tape = Tape::new();
    let w = tape.param(&p);
    let xx = tape.constant(array![[1.0, 2.0, 3.0]].into_dyn());
    let l = xx.matmul(w).tanh().sum();
    let g = l.backward();
    println!("{:?}", g.param(&p));
}
