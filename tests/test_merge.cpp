// data/merge.h (merging datasets of several sources) and the per-source metrics of a run.
#include <gtest/gtest.h>

#include <cmath>

#include "data/merge.h"
#include "kernels/tensor_ops.h"
#include "train/trainer.h"
#include "test_util.h"

using namespace livernet;
using namespace livernet::data;
using livernet::testing::error_of;

namespace {

// `patients` patients with two lesions each of the given classes (alternating), 8x8 patches at `spacing`.
Dataset make(const std::string& path, int patients, std::vector<std::string> classes, const std::string& id_prefix = "P",
             float spacing = 0.8f, int size = 8, const std::string& source = "") {
  Dataset d;
  d.path = path;
  d.class_names = std::move(classes);
  for (int i = 0; i < 2 * patients; ++i) {
    d.images.push_back(full(Shape{size, size}, static_cast<double>(i)));
    d.labels.push_back(i % static_cast<int>(d.class_names.size()));
    d.patient_ids.push_back(str_cat(id_prefix, i / 2));
    d.lesion_ids.push_back(str_cat(id_prefix, i / 2, "_L", i % 2 + 1));
    // A large lesion is stored at a coarser spacing: the nominal spacing is the finest.
    if (spacing > 0) d.spacing_mm.push_back({i == 1 ? 2 * spacing : spacing, i == 1 ? 2 * spacing : spacing});
    if (!source.empty()) d.sources.push_back(source + ":livertumor0" + std::to_string(i % 2 + 1));
  }
  d.validate();
  return d;
}

}  // namespace

TEST(Merge, ClassesByNameSourcesAndIdsKept) {
  const Dataset a = make("/d/ircadb.h5", 2, {"cyst", "metastasis"}, "A", 0.8f, 8, "ircadb");
  const Dataset b = make("/d/crlm.h5", 3, {"metastasis", "cyst"}, "B");  // other order, no sources
  std::vector<std::string> notes;
  const Dataset m = merge_datasets({a, b}, {}, &notes);
  EXPECT_TRUE(notes.empty());
  ASSERT_EQ(m.size(), a.size() + b.size());
  EXPECT_EQ(m.class_names, (std::vector<std::string>{"cyst", "metastasis"}));
  for (std::int64_t i = 0; i < b.size(); ++i) {  // labels follow the names, not the indices
    const auto j = static_cast<std::size_t>(a.size() + i);
    EXPECT_EQ(m.class_names[m.labels[j]], b.class_names[b.labels[static_cast<std::size_t>(i)]]);
    EXPECT_EQ(m.patient_ids[j], b.patient_ids[static_cast<std::size_t>(i)]);
    EXPECT_EQ(m.sources[j], "crlm");  // no sources recorded: the file's stem
  }
  EXPECT_EQ(m.sources[0], "ircadb:livertumor01");
  EXPECT_EQ(source_names(m), (std::vector<std::string>{"ircadb", "crlm"}));
  EXPECT_EQ(m.spacing_mm.size(), m.labels.size());
  m.validate();

  MergeOptions named;
  named.source_names = {"", "tcia_crlm"};
  named.classes = {"metastasis", "cyst"};
  const Dataset n = merge_datasets({a, b}, named, nullptr);
  EXPECT_EQ(n.class_names, named.classes);
  EXPECT_EQ(source_names(n), (std::vector<std::string>{"ircadb", "tcia_crlm"}));
  EXPECT_EQ(n.class_names[n.labels[0]], a.class_names[a.labels[0]]);
}

TEST(Merge, RefusesWhatWouldMixUnlikePatches) {
  const Dataset a = make("/d/a.h5", 2, {"cyst", "metastasis"}, "A");
  EXPECT_NE(error_of([&] { merge_datasets({a, make("/d/b.h5", 2, {"cyst", "metastasis"}, "B", 0.8f, 16)}, {}, nullptr); })
                .find("/d/b.h5: patches are [16, 16] but /d/a.h5's are [8, 8]; extract every source with the same --size"),
            std::string::npos);
  EXPECT_NE(error_of([&] { merge_datasets({a, make("/d/b.h5", 2, {"cyst", "metastasis"}, "B", 0.7f)}, {}, nullptr); })
                .find("extract every source with the same --spacing"),
            std::string::npos);
  // Spacing not recorded (a manifest): merged, with a note, and no spacing in the result.
  std::vector<std::string> notes;
  const Dataset m = merge_datasets({a, make("/d/b.csv", 2, {"cyst", "metastasis"}, "B", 0.f)}, {}, &notes);
  ASSERT_EQ(notes.size(), 1u);
  EXPECT_NE(notes[0].find("/d/b.csv: records no pixel spacing"), std::string::npos);
  EXPECT_TRUE(m.spacing_mm.empty());
  EXPECT_EQ(error_of([&] { merge_datasets({a, a}, {}, nullptr); }), "/d/a.h5: given twice");
  EXPECT_EQ(error_of([&] { merge_datasets({a}, {}, nullptr); }), "merging needs at least two datasets, got 1");
  MergeOptions only;
  only.classes = {"metastasis"};
  EXPECT_NE(error_of([&] { merge_datasets({a, make("/d/b.h5", 2, {"cyst", "metastasis"}, "B")}, only, nullptr); })
                .find("/d/a.h5: class 'cyst' is not in --classes"),
            std::string::npos);
  MergeOptions bad;
  bad.source_names = {"ircadb", "tcia crlm"};
  EXPECT_NE(error_of([&] { merge_datasets({a, make("/d/b.h5", 2, {"cyst", "metastasis"}, "B")}, bad, nullptr); })
                .find("source name 'tcia crlm' for /d/b.h5"),
            std::string::npos);
}

TEST(Merge, PatientIdsInTwoSourcesAreRefusedOrPrefixed) {
  const Dataset a = make("/d/a.h5", 2, {"cyst", "metastasis"}, "P", 0.8f, 8, "ircadb");
  const Dataset b = make("/d/b.h5", 2, {"cyst", "metastasis"}, "P", 0.8f, 8, "tcia");
  EXPECT_NE(error_of([&] { merge_datasets({a, b}, {}, nullptr); })
                .find("patient P0 is in both /d/a.h5 and /d/b.h5"),
            std::string::npos);
  MergeOptions o;
  o.prefix_ids = true;
  const Dataset m = merge_datasets({a, b}, o, nullptr);
  EXPECT_EQ(m.patient_ids.front(), "ircadb/P0");
  EXPECT_EQ(m.patient_ids.back(), "tcia/P1");
  EXPECT_EQ(m.lesion_ids.back(), "tcia/P1_L2");
  EXPECT_EQ(m.num_patients(), a.num_patients() + b.num_patients());
}

TEST(Merge, PerSourceMetricsLeaveUndefinedValuesUndefined) {
  // Source "crlm" holds metastases only: its specificity and AUC are not defined, its recall is.
  Dataset d = make("/d/m.h5", 2, {"cyst", "metastasis"}, "A", 0.8f, 8, "ircadb");
  for (int i = 0; i < 2; ++i) {
    d.images.push_back(full(Shape{8, 8}, 0.0));
    d.labels.push_back(1);
    d.patient_ids.push_back(str_cat("B", i));
    d.lesion_ids.push_back(str_cat("B", i, "_L1"));
    d.spacing_mm.push_back({0.8f, 0.8f});
    d.sources.push_back("crlm:Tumor_1");
  }
  train::FoldResult f;
  f.test_indices = {0, 1, 2, 3, 4, 5};
  f.test_probs = {{0.9, 0.1}, {0.2, 0.8}, {0.6, 0.4}, {0.3, 0.7}, {0.1, 0.9}, {0.7, 0.3}};
  const auto per = train::per_source_metrics(d, {f}, 1);
  ASSERT_EQ(per.size(), 2u);
  EXPECT_EQ(per[0].first, "ircadb");
  EXPECT_EQ(per[0].second.n, 4);
  EXPECT_DOUBLE_EQ(per[0].second.accuracy, 1.0);
  EXPECT_DOUBLE_EQ(per[0].second.auc, 1.0);
  EXPECT_EQ(per[1].first, "crlm");
  EXPECT_DOUBLE_EQ(per[1].second.recall, 0.5);
  EXPECT_TRUE(std::isnan(per[1].second.specificity));
  EXPECT_TRUE(std::isnan(per[1].second.auc));
  EXPECT_TRUE(train::per_source_metrics(make("/d/x.h5", 2, {"cyst", "metastasis"}), {f}, 1).empty());
}
