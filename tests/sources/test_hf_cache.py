"""The KV-cache keyword: ``cache`` from transformers 5.25 on, ``past_key_values`` before."""

from torch import nn

from torchcost.sources.hf_cache import cache_keyword, with_cache


class NewDecoder(nn.Module):
    def forward(self, input_ids, cache=None, use_cache=None):  # transformers >= 5.25
        return input_ids


class OldDecoder(nn.Module):
    def forward(self, input_ids, past_key_values=None, use_cache=None):  # transformers < 5.25
        return input_ids


class Encoder(nn.Module):
    def forward(self, input_ids, attention_mask=None):
        return input_ids


def test_either_name_is_found_and_none_for_a_model_without_a_cache():
    assert cache_keyword(NewDecoder()) == "cache"
    assert cache_keyword(OldDecoder()) == "past_key_values"
    assert cache_keyword(Encoder()) is None


def test_the_keywords_pass_the_cache_under_the_model_s_own_name():
    cache = object()
    assert with_cache(NewDecoder(), cache) == {"cache": cache, "use_cache": True}
    assert with_cache(OldDecoder(), cache) == {"past_key_values": cache, "use_cache": True}
