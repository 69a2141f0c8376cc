"""Content parts of OpenAI-dialect answers → pieces, with unknown parts noted."""

from __future__ import annotations

from lynkr.providers._parts import Piece, UnknownParts, content_pieces, message_pieces


def _pieces(content):
    unknown = UnknownParts()
    return content_pieces(content, unknown), unknown


def test_string_and_null_content():
    """A string is one text piece; null and empty strings give none."""
    assert _pieces("hi")[0] == [Piece("text", "hi")]
    assert _pieces(None)[0] == []
    assert _pieces("")[0] == []


def test_databricks_reasoning_summary_with_signature():
    """A reasoning part's summary_text gives thinking then its signature."""
    pieces, unknown = _pieces([
        {"type": "reasoning", "summary": [
            {"type": "summary_text", "text": "let me think", "signature": "c2lnbmVk"}]},
        {"type": "text", "text": "answer"}])
    assert pieces == [Piece("thinking", "let me think"), Piece("signature", "c2lnbmVk"),
                      Piece("text", "answer")]
    assert not unknown


def test_encrypted_summary_is_redacted_thinking():
    """summary_encrypted_text becomes redacted thinking data."""
    pieces, _ = _pieces([{"type": "reasoning", "summary": [
        {"type": "summary_encrypted_text", "data": "ENC=="}]}])
    assert pieces == [Piece("redacted_thinking", "ENC==")]


def test_mistral_thinking_part():
    """Mistral's thinking part holds a list of text chunks."""
    pieces, _ = _pieces([{"type": "thinking", "thinking": [
        {"type": "text", "text": "step one, "}, {"type": "text", "text": "step two"}]}])
    assert pieces == [Piece("thinking", "step one, step two")]


def test_refusal_part():
    """A refusal part is a refusal piece."""
    assert _pieces([{"type": "refusal", "refusal": "I can't help with that."}])[0] == [
        Piece("refusal", "I can't help with that.")]


def test_unknown_part_is_noted_by_type_and_keys_never_text():
    """An unknown part is counted with its key names; its text is not kept."""
    pieces, unknown = _pieces([{"type": "hologram", "payload": "secret words"},
                               {"type": "text", "text": "visible"}])
    assert pieces == [Piece("text", "visible")]
    assert unknown.counts == {"hologram": 1}
    assert unknown.describe() == "hologram (keys: payload, type)"
    assert "secret" not in unknown.describe()


def test_message_reasoning_fields_then_content_then_refusal():
    """reasoning_content comes first, then content, then the refusal field."""
    unknown = UnknownParts()
    pieces = message_pieces({"role": "assistant", "reasoning_content": "why",
                             "content": "what", "refusal": "no"}, unknown)
    assert pieces == [Piece("thinking", "why"), Piece("text", "what"), Piece("refusal", "no")]


def test_openrouter_reasoning_details_add_only_the_signature():
    """With `reasoning` present, reasoning_details add the signature, not the text again."""
    unknown = UnknownParts()
    pieces = message_pieces({"reasoning": "think", "reasoning_details": [
        {"type": "reasoning.text", "text": "think", "signature": "sig"}]}, unknown)
    assert pieces == [Piece("thinking", "think"), Piece("signature", "sig")]


def test_reasoning_details_alone_carry_the_text():
    """Without `reasoning`, the details' text is the thinking."""
    unknown = UnknownParts()
    pieces = message_pieces({"reasoning_details": [
        {"type": "reasoning.text", "text": "think"},
        {"type": "reasoning.encrypted", "data": "ENC"}]}, unknown)
    assert pieces == [Piece("thinking", "think"), Piece("redacted_thinking", "ENC")]


def test_unknown_message_field_is_noted():
    """A message field Lynkr does not know is noted; known ones are not."""
    unknown = UnknownParts()
    message_pieces({"content": "x", "annotations": [{"type": "url_citation"}],
                    "sparkles": {"level": 3}, "audio": None}, unknown)
    assert unknown.counts == {"field:sparkles": 1}
    assert unknown.keys["field:sparkles"] == ("level",)
