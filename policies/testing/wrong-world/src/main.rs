//! A valid component of another world (`wasi:cli/command`): the engine must
//! refuse it as "not a placement policy" rather than fail obscurely.

fn main() {
    println!("hello from the wrong world");
}
