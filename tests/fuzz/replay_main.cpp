// Replay driver for a libFuzzer target, for builds without libFuzzer (any compiler, CI).
//
//   replay_<target> CORPUS_DIR [MUTATIONS [SEED]]
//
// Runs LLVMFuzzerTestOneInput over every file of CORPUS_DIR (sorted by name), then over
// MUTATIONS (default 4000) inputs made from them by a fixed-seed generator, so every run tries
// the same inputs. A broken invariant aborts; the input that did it is printed in hex and
// written to replay-crash-<program>.bin in the working directory.

#include <algorithm>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <memory>
#include <string>
#include <vector>

#include <fcntl.h>
#include <unistd.h>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size);

// Called by AddressSanitizer/UndefinedBehaviorSanitizer before they exit; absent otherwise.
extern "C" void __sanitizer_set_death_callback(void (*callback)()) __attribute__((weak));

namespace {

constexpr std::size_t max_input_size = 1 << 16;

// What is running now, for the crash report (read from a signal handler: plain globals).
const std::uint8_t* current_data = nullptr;
std::size_t current_size = 0;
char current_label[512] = "";
char crash_file_name[256] = "replay-crash.bin";  // replay-crash-<target>.bin, set in main()

void write_all(int fd, const char* p, std::size_t n) {
    while (n > 0) {
        const ssize_t w = ::write(fd, p, n);
        if (w <= 0) return;
        p += w;
        n -= static_cast<std::size_t>(w);
    }
}

void write_str(int fd, const char* s) {
    write_all(fd, s, std::strlen(s));
}

// Async-signal-safe: write(), open(), no allocation.
void report_current_input() {
    static volatile std::sig_atomic_t reported = 0;
    if (reported != 0 || current_data == nullptr) return;
    reported = 1;
    write_str(2, "\n==replay== failing input: ");
    write_str(2, current_label);
    write_str(2, "\n==replay== hex: ");
    static constexpr char hex[] = "0123456789abcdef";
    for (std::size_t i = 0; i < current_size && i < 4096; ++i) {
        const char pair[2] = {hex[current_data[i] >> 4], hex[current_data[i] & 0xF]};
        write_all(2, pair, 2);
    }
    write_str(2, current_size > 4096 ? " ...\n" : "\n");
    const int fd = ::open(crash_file_name, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd >= 0) {
        write_all(fd, reinterpret_cast<const char*>(current_data), current_size);
        ::close(fd);
        write_str(2, "==replay== written to ");
        write_str(2, crash_file_name);
        write_str(2, "\n");
    }
}

void on_fatal_signal(int sig) {
    report_current_input();
    std::signal(sig, SIG_DFL);
    std::raise(sig);
}

void run(const std::vector<std::uint8_t>& input, const std::string& label) {
    std::snprintf(current_label, sizeof current_label, "%s (%zu bytes)", label.c_str(),
                  input.size());
    current_data = input.data();
    current_size = input.size();
    // Copy into an exactly sized heap block so that reads past the end are caught.
    std::unique_ptr<std::uint8_t[]> exact(new std::uint8_t[input.size() + (input.empty() ? 1 : 0)]);
    std::copy(input.begin(), input.end(), exact.get());
    LLVMFuzzerTestOneInput(exact.get(), input.size());
    current_data = nullptr;
}

// splitmix64: small, fast, and the same sequence everywhere.
class generator {
public:
    explicit generator(std::uint64_t seed) : state_(seed) {}
    std::uint64_t next() {
        std::uint64_t z = (state_ += 0x9E3779B97F4A7C15ULL);
        z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
        z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
        return z ^ (z >> 31);
    }
    // Uniform enough in [0, n); n > 0.
    std::size_t below(std::size_t n) { return static_cast<std::size_t>(next() % n); }

private:
    std::uint64_t state_;
};

constexpr std::uint8_t interesting_bytes[] = {
    0x00, 0x01, 0x02, 0x08, 0x09, 0x0A, 0x7D, 0x7E, 0x7F, 0x80, 0x81, 0x88, 0x89, 0x8A, 0xC0, 0xC3,
    0xE0, 0xED, 0xF0, 0xF4, 0xFE, 0xFF, '{',  '}',  '[',  ']',  '"',  '\\', ':',  ',',  'e',  '9'};

std::vector<std::uint8_t> mutate(const std::vector<std::vector<std::uint8_t>>& corpus,
                                 generator& g) {
    std::vector<std::uint8_t> out = corpus[g.below(corpus.size())];
    const std::size_t rounds = 1 + g.below(4);
    for (std::size_t round = 0; round < rounds; ++round) {
        switch (g.below(9)) {
            case 0:  // flip a bit
                if (!out.empty())
                    out[g.below(out.size())] ^= static_cast<std::uint8_t>(1u << g.below(8));
                break;
            case 1:  // random byte
                if (!out.empty()) out[g.below(out.size())] = static_cast<std::uint8_t>(g.next());
                break;
            case 2:  // interesting byte
                if (!out.empty()) {
                    out[g.below(out.size())] = interesting_bytes[g.below(sizeof interesting_bytes)];
                }
                break;
            case 3: {  // insert random bytes
                const std::size_t at = g.below(out.size() + 1);
                const std::size_t n = 1 + g.below(8);
                std::vector<std::uint8_t> bytes(n);
                for (auto& b : bytes) b = static_cast<std::uint8_t>(g.next());
                out.insert(out.begin() + static_cast<std::ptrdiff_t>(at), bytes.begin(),
                           bytes.end());
                break;
            }
            case 4: {  // erase a range
                if (out.empty()) break;
                const std::size_t at = g.below(out.size());
                const std::size_t n = 1 + g.below(std::min<std::size_t>(out.size() - at, 16));
                out.erase(out.begin() + static_cast<std::ptrdiff_t>(at),
                          out.begin() + static_cast<std::ptrdiff_t>(at + n));
                break;
            }
            case 5: {  // duplicate a range
                if (out.empty()) break;
                const std::size_t from = g.below(out.size());
                const std::size_t n = 1 + g.below(std::min<std::size_t>(out.size() - from, 64));
                const std::vector<std::uint8_t> piece(
                    out.begin() + static_cast<std::ptrdiff_t>(from),
                    out.begin() + static_cast<std::ptrdiff_t>(from + n));
                const std::size_t at = g.below(out.size() + 1);
                out.insert(out.begin() + static_cast<std::ptrdiff_t>(at), piece.begin(),
                           piece.end());
                break;
            }
            case 6: {  // splice with another corpus entry
                const auto& other = corpus[g.below(corpus.size())];
                const std::size_t keep = g.below(out.size() + 1);
                const std::size_t from = g.below(other.size() + 1);
                out.resize(keep);
                out.insert(out.end(), other.begin() + static_cast<std::ptrdiff_t>(from),
                           other.end());
                break;
            }
            case 7:  // truncate
                out.resize(g.below(out.size() + 1));
                break;
            case 8: {  // insert an interesting byte
                const std::size_t at = g.below(out.size() + 1);
                out.insert(out.begin() + static_cast<std::ptrdiff_t>(at),
                           interesting_bytes[g.below(sizeof interesting_bytes)]);
                break;
            }
        }
        if (out.size() > max_input_size) out.resize(max_input_size);
    }
    return out;
}

}  // namespace

int main(int argc, char** argv) {
    if (argc < 2 || argc > 4) {
        std::fprintf(stderr, "usage: %s CORPUS_DIR [MUTATIONS [SEED]]\n", argv[0]);
        return 2;
    }
    const std::filesystem::path dir = argv[1];
    const unsigned long mutations = argc >= 3 ? std::strtoul(argv[2], nullptr, 10) : 4000;
    const std::uint64_t seed = argc >= 4 ? std::strtoull(argv[3], nullptr, 0) : 0x5eed;

    std::snprintf(crash_file_name, sizeof crash_file_name, "replay-crash-%s.bin",
                  std::filesystem::path(argv[0]).filename().c_str());
    for (int sig : {SIGABRT, SIGSEGV, SIGBUS, SIGILL, SIGFPE}) std::signal(sig, on_fatal_signal);
    if (__sanitizer_set_death_callback != nullptr) {
        __sanitizer_set_death_callback(report_current_input);
    }

    std::vector<std::filesystem::path> files;
    std::error_code ec;
    for (const auto& entry : std::filesystem::directory_iterator(dir, ec)) {
        if (entry.is_regular_file()) files.push_back(entry.path());
    }
    if (ec || files.empty()) {
        std::fprintf(stderr, "no corpus files in %s\n", dir.c_str());
        return 2;
    }
    std::sort(files.begin(), files.end());

    std::vector<std::vector<std::uint8_t>> corpus;
    for (const auto& path : files) {
        std::ifstream in(path, std::ios::binary);
        std::vector<std::uint8_t> bytes((std::istreambuf_iterator<char>(in)),
                                        std::istreambuf_iterator<char>());
        if (bytes.size() > max_input_size) bytes.resize(max_input_size);
        run(bytes, "corpus file " + path.filename().string());
        corpus.push_back(std::move(bytes));
    }

    generator g(seed);
    for (unsigned long i = 0; i < mutations; ++i) {
        const auto input = mutate(corpus, g);
        run(input, "mutation " + std::to_string(i) + " (seed " + std::to_string(seed) + ")");
    }
    std::printf("replayed %zu corpus files and %lu mutations: no invariant broken\n", corpus.size(),
                mutations);
    return 0;
}
