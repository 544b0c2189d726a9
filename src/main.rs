fn main() -> std::process::ExitCode {
    llmrpc::cli::main()
}
