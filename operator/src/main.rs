fn main() {
    eprintln!("spikewatch-operator: not implemented yet");
    std::process::exit(1);
}
