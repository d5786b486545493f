#pragma once
// A models::vit as a Hugging Face model folder, so that PyTorch (transformers' ViTForImageClassification, or
// tools/pytorch_check.py) rebuilds the base an adapter was trained on:
//   folder/config.json          ViTConfig's fields that define the shapes (hidden_size, num_hidden_layers, ...),
//                               id2label, and a "cpdiff" object (anything the caller records: training settings,
//                               accuracy) that load_hf_vit can require to match
//   folder/model.safetensors    the base's parameters under their HF names (F32, __metadata__ format "pt");
//                               lora_A / lora_B entries are left out (they are the adapters' business)
// The folder is written as a set (io::write_folder_atomic, marker config.json).
//   models::save_hf_vit("out/base", vit, {{"pretrain", settings}});
//   if (!models::load_hf_vit("out/base", vit, {{"pretrain", settings}}, &why)) { ...train, then save... }
#include <cstddef>
#include <filesystem>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cpdiff/core/error.hpp"
#include "cpdiff/data/fashion_mnist.hpp"
#include "cpdiff/io/atomic_file.hpp"
#include "cpdiff/io/atomic_folder.hpp"
#include "cpdiff/io/json_read.hpp"
#include "cpdiff/io/safetensors.hpp"
#include "cpdiff/models/vit.hpp"
#include "cpdiff/tensor/weights_file.hpp"

namespace cpdiff::models {

namespace vit_hf_detail {
// The base's parameters: every entry but the attached LoRAs' lora_A / lora_B.
inline bool is_base_entry(const std::string& name) {
  return name.find(".lora_A.") == std::string::npos && name.find(".lora_B.") == std::string::npos;
}
}  // namespace vit_hf_detail

// ViTConfig of a vit<C>: the fields transformers reads to build ViTForImageClassification.
template <class C>
nlohmann::json hf_vit_config(const nlohmann::json& cpdiff_fields = nlohmann::json::object()) {
  nlohmann::json id2label = nlohmann::json::object(), label2id = nlohmann::json::object();
  for (std::size_t i = 0; i < C::classes; ++i) {
    const std::string name = C::classes == data::fashion_mnist_num_classes
                                 ? std::string(data::fashion_mnist_class_names[i])
                                 : "LABEL_" + std::to_string(i);
    id2label[std::to_string(i)] = name;
    label2id[name] = i;
  }
  return {{"architectures", {"ViTForImageClassification"}},
          {"model_type", "vit"},
          {"hidden_size", C::dim},
          {"num_hidden_layers", C::depth},
          {"num_attention_heads", C::heads},
          {"intermediate_size", C::mlp_dim},
          {"hidden_act", "gelu"},
          {"hidden_dropout_prob", 0.0},
          {"attention_probs_dropout_prob", 0.0},
          {"layer_norm_eps", 1e-12},
          {"image_size", C::image},
          {"patch_size", C::patch},
          {"num_channels", C::channels},
          {"qkv_bias", true},
          {"num_labels", C::classes},
          {"id2label", id2label},
          {"label2id", label2id},
          {"cpdiff", cpdiff_fields}};
}

template <class C, class T, class B>
void save_hf_vit(const std::filesystem::path& folder, vit<C, T, B>& m,
                 const nlohmann::json& cpdiff_fields = nlohmann::json::object()) {
  io::safetensors_writer w;
  w.set_metadata("format", "pt");
  weights_detail::add_entries(w, m.parameters(), vit_hf_detail::is_base_entry, io::st_dtype::F32);
  const std::string config = hf_vit_config<C>(cpdiff_fields).dump(2) + "\n";
  io::write_folder_atomic(
      folder,
      [&](const std::filesystem::path& tmp) {
        w.save(tmp / "model.safetensors");
        io::write_file_atomic(tmp / "config.json", config);
      },
      "config.json", "models::save_hf_vit");
}

// Loads the folder into m when it holds this architecture and its config.json's "cpdiff" object equals
// `expect` (the cache check); returns false with the reason in *why otherwise (folder or files missing, other
// sizes, other settings). A folder that matches but whose weights do not fit (missing or extra tensors, other
// shapes, a corrupt file) is an error: io_error / shape_error naming the file and the tensor.
template <class C, class T, class B>
bool load_hf_vit(const std::filesystem::path& folder, vit<C, T, B>& m, const nlohmann::json& expect,
                 std::string* why = nullptr) {
  constexpr const char* where = "models::load_hf_vit";
  namespace fs = std::filesystem;
  auto refuse = [&](const std::string& reason) {
    if (why) *why = reason;
    return false;
  };
  std::error_code ec;
  if (!fs::exists(folder / "config.json", ec) || !fs::exists(folder / "model.safetensors", ec))
    return refuse("'" + folder.string() + "' has no config.json and model.safetensors");
  const std::vector<std::byte> bytes = io::read_file_bytes(folder / "config.json");
  const io::json_parse_result r =
      io::parse_json(std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
  CPDIFF_CHECK(r.ok() && r.value.is_object(), io_error, where, "'", (folder / "config.json").string(),
               "' is not a JSON object: ", r.error);
  nlohmann::json want = hf_vit_config<C>(expect), have = r.value;
  for (auto it = want.begin(); it != want.end(); ++it)
    if (!have.contains(it.key()) || have[it.key()] != it.value())
      return refuse("'" + (folder / "config.json").string() + "' has " + it.key() + " = " +
                    (have.contains(it.key()) ? io::json_excerpt(have[it.key()]) : std::string("(missing)")) +
                    ", this run needs " + io::json_excerpt(it.value()));
  const fs::path file = folder / "model.safetensors";
  weights_detail::load_entries(io::load_safetensors(file), file, m.parameters(), vit_hf_detail::is_base_entry, where);
  return true;
}

}  // namespace cpdiff::models
