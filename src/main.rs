/// A faster allocator than the system's for the many small allocations of JSON handling.
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    llmrpc::main()
}
