// tools/merge_datasets: several lesion datasets (one per public or local source) -> one training set with a
// source per lesion, after checking that they can be merged (docs/reproduce.md).
#include <cstdio>
#include <filesystem>

#include "data/dataset.h"
#include "data/merge.h"
#include "tools/cli.h"

using namespace livernet;
namespace fs = std::filesystem;

int main(int argc, char** argv) {
  CLI::App app(
      "Merges lesion datasets from several sources into one dataset file. Checks first that every input has\n"
      "the same patch size and spacing, matches classes by name, keeps patients apart and records each\n"
      "lesion's source, so tools/train reports metrics per source. See docs/reproduce.md.",
      "merge_datasets");
  std::vector<std::string> inputs, sources, classes;
  std::string output;
  bool prefix_ids = false;
  app.add_option("inputs", inputs, "dataset files (.h5 from tools/extract_lesions or make_phantoms, or manifest .csv)")
      ->required()
      ->expected(2, 64);
  app.add_option("--output,-o", output, "the merged dataset file to write (.h5)")->required();
  app.add_option("--source", sources,
                 "the source name of each input, in order (default: what each file records, else its file name)")
      ->delimiter(',');
  app.add_option("--classes", classes, "the merged class order, comma-separated (default: in order of first appearance)")
      ->delimiter(',');
  app.add_flag("--prefix-ids", prefix_ids, "make patient and lesion ids SOURCE/ID (for ids that repeat across sources)");
  return tools::run(app, argc, argv, [&] {
    std::vector<data::Dataset> loaded;
    for (const auto& in : inputs) {
      LN_CHECK(fs::absolute(in) != fs::absolute(output), output, ": is also an input; write the merge to a new file");
      loaded.push_back(data::load_dataset(in));
    }
    data::MergeOptions o;
    o.source_names = sources;
    o.classes = classes;
    o.prefix_ids = prefix_ids;
    std::vector<std::string> notes;
    data::Dataset merged = data::merge_datasets(loaded, o, &notes);
    for (const auto& n : notes) std::fprintf(stderr, "merge_datasets: %s\n", n.c_str());
    merged.path = output;
    data::save_dataset_h5(merged, output);

    // Per source: lesions of each class and patients, so a source without one class shows.
    std::printf("merge_datasets: %s\n", merged.summary().c_str());
    for (const auto& name : data::source_names(merged)) {
      std::vector<std::int64_t> idx;
      for (std::int64_t i = 0; i < merged.size(); ++i)
        if (data::source_name(merged.sources[static_cast<std::size_t>(i)]) == name) idx.push_back(i);
      std::printf("  %-14s %s\n", name.c_str(), merged.subset(idx).summary().c_str());
    }
    std::printf("  wrote %s\n", output.c_str());
    return 0;
  });
}
