"""WhatsApp in every language: placeholders, deleted messages and iOS's marked lines.

Each one-line export below is built as WhatsApp writes it (iOS: an LRM before the
``[`` and before the body; Android: the placeholder alone as the body), with the
placeholder texts of ``twentyday.parsers.whatsapp_strings`` (WhatsApp's own
strings; sources in that module and in tests/data/whatsapp/SOURCES.md).
"""

from __future__ import annotations

import io
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from tests.parsers.conftest import events, messages
from twentyday.parsers.whatsapp import parse_text
from twentyday.records import ParsedAttachment, ParsedMessage, ParseHints, Record

DATA = Path(__file__).resolve().parents[1] / "data" / "whatsapp"
LRM = "\u200e"
MADRID = ZoneInfo("Europe/Madrid")


def parse(
    data: bytes, source: str = "WhatsApp Chat - Equipo Proyecto.zip", zone: str = "Europe/Madrid"
) -> list[Record]:
    hints = ParseHints(timezone=ZoneInfo(zone), zone_name=zone, day_first=None, source_name=source)
    return list(parse_text(io.BytesIO(data), hints))


def ios_export(*bodies: str) -> bytes:
    """A group export as iOS writes it: the chat's E2E notice, then one marked line per body."""
    lines = [f"[27/03/22, 21:41:35] Equipo Proyecto: {LRM}Messages and calls are end-to-end encrypted."]
    lines += [f"{LRM}[27/03/22, 21:{42 + n}:55] Dmitry: {LRM}{body}" for n, body in enumerate(bodies)]
    return ("\r\n".join(lines) + "\r\n").encode()


def android_export(*bodies: str) -> bytes:
    lines = ["27/03/2022, 21:41 - Messages and calls are end-to-end encrypted."]
    lines += [f"27/03/2022, 21:{42 + n} - Dmitry: {body}" for n, body in enumerate(bodies)]
    return ("\n".join(lines) + "\n").encode()


IOS_OMITTED = [
    ("es", "imagen omitida", "image"),
    ("es", "Tarjeta de contacto omitida", "contact card"),
    ("fr", "image absente", "image"),
    ("fr", "vidéo absente", "video"),
    ("fr", "Fiche contact manquante", "contact card"),
    ("pt-BR", "imagem ocultada", "image"),
    ("pt-BR", "figurinha omitida", "sticker"),
    ("pt-PT", "imagem não revelada", "image"),
    ("it", "immagine omessa", "image"),
    ("it", "audio omesso", "audio"),
    ("nl", "afbeelding weggelaten", "image"),
    ("ru", "изображение отсутствует", "image"),
    ("ru", "стикер не добавлен", "sticker"),
    ("uk", "зображення відсутнє", "image"),
    ("tr", "görüntü dahil edilmedi", "image"),
    ("id", "gambar tidak disertakan", "image"),
    ("ms", "imej tidak dimasukkan", "image"),
    ("ar", "لم يتم إدراج الصورة", "image"),
    ("he", "התמונה הושמטה", "image"),
    ("fa", "تصویر حذف شد", "image"),
    ("hi", "फ़ोटो हटाई गई", "image"),
    ("sv", "bild utelämnad", "image"),
    ("sv", "bild utesluten", "image"),
    ("de", "Bild weggelassen", "image"),
    ("de", "Kontaktkarte ausgelassen", "contact card"),
    ("pl", "obraz pominięty", "image"),
    ("cs", "obrázek vynechán", "image"),
    ("ja", "画像は含まれていません", "image"),
    ("ko", "이미지 생략됨", "image"),
    ("zh-Hans", "照片已忽略", "image"),
    ("zh-Hant", "圖片已略去", "image"),
    ("vi", "đã bỏ qua hình ảnh", "image"),
    ("th", "ไม่มีรูปภาพ", "image"),
    ("en", "GIF omitted", "gif"),
    ("en", "document omitted", "document"),
]


@pytest.mark.parametrize(("language", "placeholder", "kind"), IOS_OMITTED)
def test_an_iphone_placeholder_in_any_language_is_a_record_whose_copy_is_incomplete(
    language: str, placeholder: str, kind: str
) -> None:
    records = parse(ios_export(placeholder))
    [message] = messages(records)
    assert message.sender == "Dmitry"
    assert message.created_at == datetime(2022, 3, 27, 21, 42, 55, tzinfo=MADRID)
    assert message.flags == ("media_omitted",)
    assert message.attachments == (ParsedAttachment(name=kind),)
    assert [(e.kind, e.at) for e in events(records)] == [
        ("system", datetime(2022, 3, 27, 21, 41, 35, tzinfo=MADRID)),
        ("incomplete_copy", message.created_at),
    ]


IOS_DELETED = [
    ("es", "Se eliminó este mensaje."), ("es", "Eliminaste este mensaje."),
    ("fr", "Ce message a été supprimé."), ("fr", "Vous avez supprimé ce message."),
    ("pt-BR", "Mensagem apagada"), ("pt-BR", "Você apagou esta mensagem"),
    ("it", "Questo messaggio è stato eliminato."), ("nl", "Dit bericht is verwijderd."),
    ("ru", "Данное сообщение удалено."), ("tr", "Bu mesaj silindi."),
    ("id", "Pesan ini dihapus."), ("ar", "تم حذف هذه الرسالة."), ("sv", "Det här meddelandet raderades."),
    ("ja", "このメッセージは削除されました。"), ("de", "Du hast diese Nachricht gelöscht."),
]


@pytest.mark.parametrize(("language", "text"), IOS_DELETED)
def test_an_iphone_deleted_message_in_any_language_is_a_record_shown_deleted(language: str, text: str) -> None:
    records = parse(ios_export(text))
    [message] = messages(records)
    assert (message.sender, message.created_at, message.flags) == (
        "Dmitry", datetime(2022, 3, 27, 21, 42, 55, tzinfo=MADRID), ("deleted",)
    )
    assert [e.kind for e in events(records)] == ["system", "deleted_message"]


ANDROID = [
    ("es", "<Multimedia omitido>", "media", "media_omitted", "incomplete_copy"),
    ("fr", "<Médias omis>", "media", "media_omitted", "incomplete_copy"),
    ("pt-BR", "<Mídia oculta>", "media", "media_omitted", "incomplete_copy"),
    ("pt-BR", "<Mídia omitida>", "media", "media_omitted", "incomplete_copy"),
    ("it", "<Media omessi>", "media", "media_omitted", "incomplete_copy"),
    ("nl", "<Media weggelaten>", "media", "media_omitted", "incomplete_copy"),
    ("ru", "<Без медиафайлов>", "media", "media_omitted", "incomplete_copy"),
    ("tr", "<Medya dahil edilmedi>", "media", "media_omitted", "incomplete_copy"),
    ("id", "<Media tidak disertakan>", "media", "media_omitted", "incomplete_copy"),
    ("ar", "<تم استبعاد الوسائط>", "media", "media_omitted", "incomplete_copy"),
    ("sv", "<Media har utelämnats>", "media", "media_omitted", "incomplete_copy"),
    ("de", "<Medien ausgeschlossen>", "media", "media_omitted", "incomplete_copy"),
    ("es", "Se eliminó este mensaje", None, "deleted", "deleted_message"),
    ("pt-BR", "Mensagem apagada", None, "deleted", "deleted_message"),
    ("fr", "Vous avez supprimé ce message", None, "deleted", "deleted_message"),
    ("it", "Hai eliminato questo messaggio", None, "deleted", "deleted_message"),
]


@pytest.mark.parametrize(("language", "body", "kind", "flag", "event"), ANDROID)
def test_an_android_placeholder_in_any_language_is_a_record_with_its_event(
    language: str, body: str, kind: str | None, flag: str, event: str
) -> None:
    records = parse(android_export(body), source="WhatsApp Chat with Dmitry.txt")
    [message] = messages(records)
    assert (message.sender, message.created_at, message.flags) == (
        "Dmitry", datetime(2022, 3, 27, 21, 42, tzinfo=MADRID), (flag,)
    )
    assert message.attachments == ((ParsedAttachment(name=kind),) if kind else ())
    assert [e.kind for e in events(records)] == ["system", event]


def test_android_attachments_are_named_in_other_languages() -> None:
    records = parse(android_export("IMG-20220327-WA0002.jpg (archivo adjunto)", "nota final"),
                    source="WhatsApp Chat with Dmitry.txt")
    first, second = messages(records)
    assert first.flags == ("media_referenced",)
    assert first.attachments[0].name == "IMG-20220327-WA0002.jpg"
    assert second.flags == ()


def test_iphone_attachment_tags_are_named_in_other_languages() -> None:
    records = parse(ios_export("<adjunto: 00000012-PHOTO-2022-03-27-21-42-55.jpg>",
                               "<pièce jointe : 00000013-PHOTO-2022-03-27-21-43-55.jpg>"))
    assert [(m.flags, m.attachments[0].name) for m in messages(records)] == [
        (("media_referenced",), "00000012-PHOTO-2022-03-27-21-42-55.jpg"),
        (("media_referenced",), "00000013-PHOTO-2022-03-27-21-43-55.jpg"),
    ]


def test_a_participant_writing_placeholder_words_in_a_longer_message_is_an_ordinary_message() -> None:
    export = (
        "[27/03/22, 21:41:35] Dmitry: imagen omitida, la mando luego\r\n"
        "[27/03/22, 21:42:35] Dmitry: my video omitted the ending\r\n"
        "[27/03/22, 21:43:35] Dmitry: Se eliminó este mensaje\r\n"
        "y lo volví a escribir\r\n"
        "[27/03/22, 21:44:35] Dmitry: the photo: " + LRM + "was cropped\r\n"
    ).encode()
    records = parse(export)
    assert [m.flags for m in messages(records)] == [(), (), (), ()]
    assert events(records) == []


def test_an_unknown_marked_line_from_a_participant_is_a_flagged_record_never_a_system_event() -> None:
    # "nota de voz de visualización única omitida" stands for a placeholder a later
    # WhatsApp version adds: no table knows it, the LRM still says it is not plain text.
    # "Emplacement partagé: …" stands for a location word no table knows.
    records = parse(ios_export("nota de voz de visualización única omitida",
                               "Emplacement partagé: https://maps.google.com/?q=1,2"))
    found = messages(records)
    assert [(m.sender, m.created_at, m.flags) for m in found] == [
        ("Dmitry", datetime(2022, 3, 27, 21, 42, 55, tzinfo=MADRID), ("unrecognised_line",)),
        ("Dmitry", datetime(2022, 3, 27, 21, 43, 55, tzinfo=MADRID), ("unrecognised_line",)),
    ]
    assert found[0].body == "nota de voz de visualización única omitida"
    assert [e.kind for e in events(records)] == ["system"]


def test_the_chats_own_notices_stay_system_events_whatever_the_language() -> None:
    export = (
        "[27/03/22, 21:41:35] Equipo: " + LRM + "Los mensajes y las llamadas están cifrados de extremo a extremo.\r\n"
        + LRM + "[27/03/22, 21:42:35] Equipo: " + LRM + "Ana añadió a Marta\r\n"
        + LRM + "[27/03/22, 21:43:35] Ana: " + LRM + "Ana salió del grupo\r\n"
        "27/03/22, 21:44:35: never a header\r\n"
    ).encode()
    # No chat name in the file name: the first marked line names the chat.
    records = parse(export, source="_chat.txt")
    assert messages(records) == []
    assert [(e.kind, e.detail) for e in events(records)] == [
        ("system", "Equipo: Los mensajes y las llamadas están cifrados de extremo a extremo."),
        ("system", "Equipo: Ana añadió a Marta"),
        ("system", "Ana: Ana salió del grupo\n27/03/22, 21:44:35: never a header"),
    ]


def test_android_system_lines_without_an_author_stay_system_events() -> None:
    records = parse(android_export("hola") + b"27/03/2022, 21:50 - Ana left\n", source="WhatsApp Chat with Dmitry.txt")
    assert [m.body for m in messages(records)] == ["hola"]
    assert [(e.kind, e.detail) for e in events(records)] == [
        ("system", "Messages and calls are end-to-end encrypted."),
        ("system", "Ana left"),
    ]


def test_a_swedish_iphone_export_with_iso_dates_keeps_every_participant_line() -> None:
    export = (
        "\ufeff[2019-04-16 02:09:11] Projektgruppen: " + LRM + "Meddelanden och samtal är komplett krypterade.\r\n"
        + LRM + "[2019-04-16 02:10:00] Anna Berg: " + LRM + "bild utelämnad\r\n"
        + LRM + "[2019-04-16 02:11:00] Bo Ek: " + LRM + "video utesluten\r\n"
        + LRM + "[2019-04-16 02:12:00] Anna Berg: " + LRM + "Kontaktkort uteslutet\r\n"
        + LRM + "[2019-04-16 02:13:00] Bo Ek: " + LRM + "Det här meddelandet raderades.\r\n"
        "[2019-04-16 02:14:00] Anna Berg: Hej!\r\n"
    ).encode()
    records = parse(export, source="WhatsApp Chat - Projektgruppen.zip", zone="Europe/Stockholm")
    stockholm = ZoneInfo("Europe/Stockholm")
    assert [(m.sender, m.created_at, m.flags) for m in messages(records)] == [
        ("Anna Berg", datetime(2019, 4, 16, 2, 10, tzinfo=stockholm), ("media_omitted",)),
        ("Bo Ek", datetime(2019, 4, 16, 2, 11, tzinfo=stockholm), ("media_omitted",)),
        ("Anna Berg", datetime(2019, 4, 16, 2, 12, tzinfo=stockholm), ("media_omitted",)),
        ("Bo Ek", datetime(2019, 4, 16, 2, 13, tzinfo=stockholm), ("deleted",)),
        ("Anna Berg", datetime(2019, 4, 16, 2, 14, tzinfo=stockholm), ()),
    ]
    assert [e.kind for e in events(records)] == [
        "system", "incomplete_copy", "incomplete_copy", "incomplete_copy", "deleted_message",
    ]


def test_a_spanish_iphone_group_export_keeps_every_participant_line_as_a_record() -> None:
    records = parse((DATA / "ios_spanish_group.txt").read_bytes())
    found = messages(records)
    at = lambda day, h, m, s: datetime(2022, 3, day, h, m, s, tzinfo=MADRID)  # noqa: E731
    assert [(m.sender, m.created_at, m.flags) for m in found] == [
        ("Ana Ruiz", at(18, 14, 57, 12), ()),
        ("Ana Ruiz", at(18, 14, 58, 3), ("media_omitted",)),
        ("+1 202 555 0147", at(18, 15, 1, 44), ("media_omitted",)),
        ("Luis Gómez", at(18, 15, 2, 10), ("deleted",)),
        ("Ana Ruiz", at(18, 15, 3, 0), ("deleted",)),
        ("Luis Gómez", at(18, 15, 4, 0), ("media_omitted",)),
        ("Luis Gómez", at(18, 15, 5, 0), ("media_omitted",)),
        ("Ana Ruiz", at(18, 15, 6, 0), ("media_omitted",)),
        ("Luis Gómez", at(18, 15, 7, 0), ("media_omitted",)),
        ("Ana Ruiz", at(18, 15, 8, 0), ("media_omitted",)),
        ("Marta Díaz", at(18, 15, 10, 0), ()),
        ("Marta Díaz", at(18, 15, 11, 0), ()),  # a shared location: "Ubicación: https://…"
        ("Luis Gómez", at(19, 9, 0, 0), ()),
        ("Luis Gómez", at(19, 9, 1, 0), ("media_referenced",)),
        ("Marta Díaz", at(19, 9, 2, 0), ("unrecognised_line",)),
        ("Ana Ruiz", at(19, 9, 3, 0), ()),
        ("Luis Gómez", at(19, 9, 5, 0), ()),
        ("Ana Ruiz", at(19, 9, 6, 0), ()),
    ]
    assert [a.name for m in found[1:10] if m.flags == ("media_omitted",) for a in m.attachments] == [
        "image", "video", "sticker", "document", "contact card", "audio", "gif",
    ]
    assert found[11].body == "Ubicación: https://maps.google.com/?q=40.4168,-3.7038"
    assert found[0].body == "El borrador del presupuesto está listo\nsegunda línea del borrador"
    kinds = [e.kind for e in events(records)]
    assert kinds.count("system") == 4  # E2E notice, group created, member added, member left
    assert kinds.count("incomplete_copy") == 7
    assert kinds.count("deleted_message") == 2
    # Every header line is a record or an explicit event: 22 headers, 23 lines.
    header_records = [r for r in records if isinstance(r, ParsedMessage) or r.kind == "system"]
    assert len(header_records) == 22



# --- edited marker, locations, polls, view-once and waiting messages ------------------------------

EDITED = [
    ("en", "<This message was edited>"), ("de", "<Diese Nachricht wurde bearbeitet>"),
    ("de", "<Diese Nachricht wurde bearbeitet.>"), ("fr", "<Ce message a été modifié>"),
    ("es", "<Se editó este mensaje.>"), ("es", "<Se editó este mensaje>"), ("pt-BR", "<Mensagem editada>"),
    ("it", "<Questo messaggio è stato modificato>"), ("nl", "<Dit bericht is bewerkt>"),
    ("tr", "<Bu mesaj düzenlendi>"), ("ru", "<Сообщение изменено>"), ("id", "<Pesan ini telah diedit>"),
]


@pytest.mark.parametrize(("language", "marker"), EDITED)
def test_an_edited_android_message_in_any_language_is_marked_edited_and_the_marker_left_out(
    language: str, marker: str
) -> None:
    records = parse(android_export(f"vou sim {marker}"), source="WhatsApp Chat with Dmitry.txt")
    [message] = messages(records)
    assert (message.body, message.edited, message.flags) == ("vou sim", True, ())
    assert message.created_at == datetime(2022, 3, 27, 21, 42, tzinfo=MADRID)


@pytest.mark.parametrize(("language", "marker"), EDITED)
def test_an_edited_iphone_message_in_any_language_is_an_edited_record_not_an_unrecognised_line(
    language: str, marker: str
) -> None:
    # iOS marks the line (LRM before "[") for its own text and puts an LRM before the marker.
    export = ios_export("x").replace(f"{LRM}x".encode(), f"testo finale {LRM}{marker}".encode())
    records = parse(export)
    [message] = messages(records)
    assert (message.sender, message.body, message.edited, message.flags) == ("Dmitry", "testo finale", True, ())
    assert [e.kind for e in events(records)] == ["system"]


def test_a_text_ending_in_other_angle_brackets_is_not_edited() -> None:
    records = parse(android_export("see <https://example.org>", "x <Media omitted>", "<Se eliminó>"),
                    source="WhatsApp Chat with Dmitry.txt")
    assert [(m.body, m.edited) for m in messages(records)] == [
        ("see <https://example.org>", False), ("x <Media omitted>", False), ("<Se eliminó>", False),
    ]


PARTICIPANT_CONTENT = [
    ("es", "Ubicación: https://maps.google.com/?q=40.4168,-3.7038"),
    ("it", "Posizione: https://maps.google.com/?q=37.813885,15.254655"),
    ("de", "Standort: https://maps.google.com/?q=52.52,13.405"),
    ("pt", "Localização: https://maps.google.com/?q=-23.26,-47.29"),
    ("ru", "Местоположение: https://maps.google.com/?q=55.75,37.61"),
    ("fr", "Localisation : https://maps.google.com/?q=48.85,2.35"),
    ("en", "Location: https://maps.google.com/?q=38.89,-77.03"),
    ("de", "Live-Standort wird geteilt"),
    ("es", "ubicación en tiempo real compartida"),
    ("it", "SONDAGGIO: Che film vediamo?\nOPZIONE: Il primo (9 voti)\nOPZIONE: Il secondo (2 voti)"),
    ("en", "POLL: Where do we meet?\nOPTION: At the cinema (4 votes)"),
]


@pytest.mark.parametrize(("language", "body"), PARTICIPANT_CONTENT)
def test_a_shared_location_or_poll_in_any_language_is_an_ordinary_record_with_its_text(
    language: str, body: str
) -> None:
    records = parse(ios_export(body))
    [message] = messages(records)
    assert (message.sender, message.created_at, message.body, message.flags) == (
        "Dmitry", datetime(2022, 3, 27, 21, 42, 55, tzinfo=MADRID), body, ()
    )
    assert [e.kind for e in events(records)] == ["system"]


MISSING_CONTENT = [
    ("en", "You received a view once message. For added privacy, you can only open it on your phone.",
     "view-once media"),
    ("es", "Recibiste un mensaje de visualización única. Para mayor privacidad, solo puedes abrirlo en tu teléfono.",
     "view-once media"),
    ("en", "Waiting for this message. This may take a while.", "message content"),
]


@pytest.mark.parametrize(("language", "body", "kind"), MISSING_CONTENT)
def test_a_view_once_or_undelivered_message_is_a_record_whose_copy_is_incomplete(
    language: str, body: str, kind: str
) -> None:
    for export in (ios_export(body), android_export(body)):
        records = parse(export)
        [message] = messages(records)
        assert (message.sender, message.flags, message.attachments) == (
            "Dmitry", ("media_omitted",), (ParsedAttachment(name=kind),)
        )
        assert [(e.kind, e.at) for e in events(records)][1:] == [("incomplete_copy", message.created_at)]


# --- Android system lines in other languages ---------------------------------------------------------

ANDROID_SYSTEM = [
    ("pt-BR", "As mensagens e ligações são protegidas com a criptografia de ponta a ponta.",
     "Ana entrou usando o link de convite deste grupo"),
    ("es", "Los mensajes y las llamadas están cifrados de extremo a extremo.",
     'Ana cambió el asunto de "Obra" a "Obra 2"'),
    ("ru", "Сообщения и звонки защищены сквозным шифрованием.", "Ваш код безопасности с контактом Ана изменился"),
    ("de", "Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt.", "Ana hat Bruno hinzugefügt"),
    ("hi", "मैसेजेस और कॉल्स एंड-टू-एंड एन्क्रिप्टेड हैं.", "Ana ने ग्रुप छोड़ दिया"),
]


@pytest.mark.parametrize(("language", "notice", "change"), ANDROID_SYSTEM)
def test_android_system_lines_in_any_language_stay_system_events_and_participants_stay_records(
    language: str, notice: str, change: str
) -> None:
    export = (
        f"27/03/2022, 21:41 - {notice}\n27/03/2022, 21:42 - {change}\n"
        "27/03/2022, 21:43 - Ana: Bom dia: tudo certo?\n"
        "27/03/2022, 21:44 - Dr. Lima: 10:30 amanhã\n"
    ).encode()
    records = parse(export, source="WhatsApp Chat with Ana.txt")
    assert [(m.sender, m.body, m.created_at) for m in messages(records)] == [
        ("Ana", "Bom dia: tudo certo?", datetime(2022, 3, 27, 21, 43, tzinfo=MADRID)),
        ("Dr. Lima", "10:30 amanhã", datetime(2022, 3, 27, 21, 44, tzinfo=MADRID)),
    ]
    assert [(e.kind, e.detail) for e in events(records)] == [("system", notice), ("system", change)]


def test_an_arabic_android_export_with_rtl_marks_keeps_senders_times_and_system_lines() -> None:
    rlm = "\u200f"
    export = (
        f"{rlm}٢٧{rlm}/٣{rlm}/٢٠٢٢ ٩:٤١ م - الرسائل والمكالمات مشفرة تمامًا بين الطرفين.\n"
        f"{rlm}٢٧{rlm}/٣{rlm}/٢٠٢٢ ٩:٤٢ م - أحمد: مرحبا\n"
        f"{rlm}٢٧{rlm}/٣{rlm}/٢٠٢٢ ٩:٤٣ م - أحمد: <تم استبعاد الوسائط>\n"
    ).encode()
    records = parse(export, source="WhatsApp Chat with أحمد.txt", zone="Asia/Riyadh")
    riyadh = ZoneInfo("Asia/Riyadh")
    assert [(m.sender, m.body, m.created_at, m.flags) for m in messages(records)] == [
        ("أحمد", "مرحبا", datetime(2022, 3, 27, 21, 42, tzinfo=riyadh), ()),
        ("أحمد", "<تم استبعاد الوسائط>", datetime(2022, 3, 27, 21, 43, tzinfo=riyadh), ("media_omitted",)),
    ]
    assert [e.kind for e in events(records)] == ["system", "incomplete_copy"]


def test_a_hindi_android_export_is_read_with_latin_or_devanagari_digits() -> None:
    latin = "27/03/22, 9:41 pm - Dmitry: नमस्ते\n27/03/22, 9:42 pm - Dmitry: <मीडिया के बिना>\n"
    devanagari = "२७/०३/२२, ९:४१ pm - Dmitry: नमस्ते\n२७/०३/२२, ९:४२ pm - Dmitry: <मीडिया के बिना>\n"
    kolkata = ZoneInfo("Asia/Kolkata")
    for export in (latin, devanagari):
        records = parse(export.encode(), source="WhatsApp Chat with Dmitry.txt", zone="Asia/Kolkata")
        assert [(m.created_at, m.flags) for m in messages(records)] == [
            (datetime(2022, 3, 27, 21, 41, tzinfo=kolkata), ()),
            (datetime(2022, 3, 27, 21, 42, tzinfo=kolkata), ("media_omitted",)),
        ]


def test_a_portuguese_android_group_export_keeps_every_participant_line_as_a_record() -> None:
    records = parse((DATA / "android_pt_br_group.txt").read_bytes(), source="WhatsApp Chat with Obra Itu.txt",
                    zone="America/Sao_Paulo")
    sao_paulo = ZoneInfo("America/Sao_Paulo")
    at = lambda day, h, m: datetime(2023, 1, day, h, m, tzinfo=sao_paulo)  # noqa: E731
    found = messages(records)
    assert [(m.sender, m.created_at, m.flags, m.edited) for m in found] == [
        ("Ana Souza", at(12, 14, 31), (), False),
        ("Bruno Lima", at(12, 14, 32), (), False),
        ("Ana Souza", at(13, 9, 0), ("media_omitted",), False),
        ("Bruno Lima", at(13, 9, 1), ("deleted",), False),
        ("Ana Souza", at(13, 9, 2), (), True),
        ("Bruno Lima", at(13, 9, 3), ("media_referenced",), False),
        ("Ana Souza", at(13, 9, 4), (), False),
        ("Bruno Lima", at(13, 9, 5), ("media_omitted",), False),
        # A group subject with ": " reads as "author: text", as WhatsApp itself splits it:
        # kept as a record with its whole text, never dropped, never a participant's system event.
        ('Ana Souza mudou o nome do grupo de "Obra Itu" para "Obra Itu', at(13, 9, 6), (), False),
        ("Ana Souza", at(13, 9, 7), (), False),
    ]
    assert (found[1].body, found[4].body) == ("oi, tudo bem?\nsegunda linha", "vou sim")
    assert found[6].body == "localização: https://maps.google.com/?q=-23.2642,-47.2992"
    assert [e.kind for e in events(records)] == [
        "system", "system", "system", "incomplete_copy", "deleted_message", "incomplete_copy", "system",
    ]
