#pragma once
// What a LoRA classifier trains (train::pretrain_base / train::finetune_lora switch it):
//   pretrain:  the base's weights, the LoRA frozen (with B = 0 it adds exactly 0)
//   finetune:  lora_A / lora_B only, the base frozen (PEFT's get_peft_model)
namespace cpdiff::models {
enum class lora_mode { pretrain, finetune };
using mlp_mode = lora_mode;  // the name models::lora_mlp used first
}  // namespace cpdiff::models
