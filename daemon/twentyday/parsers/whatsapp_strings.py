"""The texts WhatsApp writes in place of a message's content, in the languages it ships.

Pure data, read by :mod:`twentyday.parsers.whatsapp`: when a participant's message
body is exactly one of these (WhatsApp writes the whole body), the message was
created and sent but its content is not in the copy (media left out) or it shows
as deleted.

Sources
-------
- iOS placeholders (``image omitted`` …), deleted texts and the localized
  ``<attached: …>`` / ``(file attached)`` words: WhatsApp's own UI strings, from
  its iOS ``Localizable.strings`` (WhatsApp 22.24.81; keys ``n*sq0`` image,
  ``I4|vp`` video, ``a86Wu`` audio, ``2K_mB`` sticker, ``~.KLq`` GIF, ``StaLC``
  document, ``Sk+0p`` contact card, ``qBly]`` deleted, ``GHe7G``/``S?EA5`` you
  deleted, ``zQ+5d`` attached) and its Android ``strings.xml`` (2.8.4278;
  ``export_media_omitted``, ``email_file_attached``, ``revoked_msg_incoming``,
  ``revoked_msg_outgoing``), as collected in the pattern tables of
  github.com/starkdmi/whats_json (``lib/src/patterns.dart``). Only the strings
  are taken (facts of WhatsApp's interface); none of that project's code.
- Forms seen in real exports quoted by other open-source parsers, where the
  tables above are older than the app: ``<Multimedia omitido>`` (es),
  ``<Médias omis>`` (fr), ``<Mídia oculta>`` (pt-BR), ``<Media omessi>`` (it),
  ``<Medya dahil edilmedi>`` (tr), ``<Medien ausgeschlossen>`` (de),
  ``(archivo adjunto)`` (es); Swedish
  ``bild utelämnad`` as reported in this project's issue 15.

- Edited marker (``<This message was edited>``, written after the text of a message
  edited after sending; Android adds a final period in some languages, iOS puts an
  LRM before the ``<``): WhatsApp's interface strings are not in any public table we
  found, so these are the forms of real exports as quoted, each by at least two
  independent open-source parsers or their test fixtures, found by exact-string
  search of public repositories (the index does not name them): en, de
  (``<Diese Nachricht wurde bearbeitet.>``), fr, es (``<Se editó este mensaje.>``),
  pt-BR (``<Mensagem editada>``), it, nl (``<Dit bericht is bewerkt>``), tr
  (``<Bu mesaj düzenlendi>``), ru (``<Сообщение изменено>``), id
  (``<Pesan ini telah diedit>``). Strings only.
- Shared and live locations: the ``Location`` word of WhatsApp's Android
  ``strings.xml`` key ``email_location_message`` and the phrases of
  ``email_live_location_message`` (2.8.4278), as collected in whats_json's
  ``patterns.dart`` (above); iOS writes the same word before a shared location.
- ``Waiting for this message. This may take a while.`` (a message whose content
  never reached the exporting phone): WhatsApp Web's own export formatter
  (``WAWebExportChat…``, message type ``CIPHERTEXT``) as quoted in public
  repositories; English only, no localized form found.
- View-once media: the English and Spanish texts iOS writes in place of a
  view-once photo or video, and Android's ``null`` body (whats_json:
  "appears for deleted view-once photo"), as quoted by open-source parsers;
  polls: ``POLL:`` (en), ``SONDAGGIO:`` (it), ``ANKET:`` (tr), likewise.

WhatsApp rewords these between versions, so no table is complete: the parser
also keeps any participant line iOS marks as special (U+200E) as a record, flagged
``unrecognised_line`` when its text is in none of these tables.
"""

from __future__ import annotations

__all__ = [
    "ANDROID_MEDIA_OMITTED", "ATTACHED_WORDS", "DELETED", "EDITED", "FILE_ATTACHED_WORDS", "IOS_OMITTED",
    "LIVE_LOCATION", "LOCATION_WORDS", "POLL_WORDS", "VIEW_ONCE", "WAITING",
]

#: iOS: the body of a message whose media was left out, by kind of media.
IOS_OMITTED: dict[str, tuple[str, ...]] = {
    "image": (
        "image omitted", "התמונה הושמטה", "изображение отсутствует", "image absente",
        "immagine omessa", "imagem não revelada", "imagen omitida", "εικόνα παραλείφθηκε",
        "зображення відсутнє", "Bild weggelassen", "لم يتم إدراج الصورة", "ইমেজ বাদ দেওয়া হয়েছে",
        "圖片已略去", "圖像已省略", "照片已忽略", "đã bỏ qua hình ảnh", "تصویر نکال دی گئی ہے",
        "görüntü dahil edilmedi", "ไม่มีรูปภาพ", "bild utesluten", "bild utelämnad",
        "obrázok vynechaný", "obraz pominięty", "Imagine omisă", "imagem ocultada",
        "afbeelding weggelaten", "bilde ikke inkludert", "imej tidak dimasukkan", "इमेज वगळली",
        "이미지 생략됨", "画像は含まれていません", "kép küldése sikertelen", "gambar tidak disertakan",
        "slika izostavljena", "फ़ोटो हटाई गई", "છબી પડતી મૂકાઈ", "íomhá ligthe ar lár", "ei kuvaa",
        "تصویر حذف شد", "billede udeladt", "obrázek vynechán", "Imatge omesa",
    ),
    "video": (
        "video omitted", "סרטון הווידאו הושמט", "видео отсутствует", "vidéo absente",
        "video omesso", "vídeo não revelado", "video omitido", "βίντεο παραλείφθηκε",
        "відео відсутнє", "Video weggelassen", "لم يتم إدراج الفيديوهات", "ভিডিও বাদ দেওয়া হয়েছে",
        "影片已略去", "影片已省略", "视频已忽略", "đã bỏ video", "ویڈیو نظرانداز", "video dahil edilmedi",
        "วิดีโอถูกลบ", "video utesluten", "video vynechané", "wideo pominięte", "clip video omis",
        "vídeo omitido", "vídeo ocultado", "video weggelaten", "video utelatt",
        "video tidak dimasukkan", "व्हिडीओ वगळला", "비디오 생략됨", "ビデオは含まれていません",
        "Videó kihagyva", "video tidak disertakan", "video izostavljen", "वीडियो छोड़ा गया",
        "વિડિયો પડતી મુકાઈ", "físeán ligthe ar lár", "videota ei sisällytetä", "ویدیو حذف شد",
        "video udeladt", "video vynecháno", "vídeo omès",
    ),
    "audio": (
        "audio omitted", "קטע קול הושמט", "аудиофайл отсутствует", "audio omis", "audio omesso",
        "ficheiro de áudio não revelado", "audio omitido", "ήχος παραλείφθηκε", "аудіо відсутнє",
        "Audio weggelassen", "لم يتم إدراج المقاطع الصوتية", "অডিও বাদ দেওয়া হয়েছে", "音訊已略去",
        "音訊已省略", "音频已忽略", "bỏ qua tệp âm thanh", "آڈیو نظرانداز", "ses dahil edilmedi",
        "ไม่มีไฟล์เสียง", "ljud utelslutet", "zvuk vynechaný", "audio pominięte", "fără audio",
        "áudio ocultado", "audio weggelaten", "lyd utelatt", "audio tidak dimasukkan", "ऑडिओ वगळला",
        "오디오 생략됨", "音声は含まれていません", "Hang kihagyása", "audio tidak disertakan",
        "zvuk izostavljen", "ऑडियो हटाई गयी", "ઓડિયો ફાઇલ શામેલ કરી નથી", "comhad fuaime ar lár",
        "äänitiedostoa ei sisällytetä", "صدا حذف شد", "lyd udeladt", "zvukový soubor vynechán",
        "Àudio omès",
    ),
    "sticker": (
        "sticker omitted", "סטיקר הושמט", "стикер не добавлен", "sticker omis",
        "sticker non incluso", "sticker não revelado", "sticker omitido", "αυτοκόλλητο παραλήφθηκε",
        "Наклейку не додано", "Sticker weggelassen", "تم حذف الملصقات", "স্টিকার বাদ দেওয়া হয়েছে",
        "貼圖已略去", "貼圖已忽略", "贴图已省略", "đã bỏ sticker", "اسٹیکر نظرانداز",
        "Çıkartma dahil edilmedi", "ไม่มีสติกเกอร์", "sticker utesluten", "nálepka vynechaná",
        "pominięto naklejkę", "figurinha omitida", "sticker weggelaten", "klistremerke utelatt",
        "pelekat tidak disertakan", "स्टिकर वगळले", "스티커 제외됨", "スタンプは含まれていません",
        "matrica kihagyva", "stiker tidak disertakan", "naljepnica izostavljena", "स्टिकर छोड़ा गया",
        "સ્ટીકર પડતું મુકાયું", "fágadh an greamán ar lár", "tarraa ei sisällytetty", "استیکر حذف شد",
        "klistermærke udeladt", "nálepka vynechána", "adhesiu omès",
    ),
    "gif": (
        "GIF omitted", "GIF הושמט", "GIF отсутствует", "GIF retiré", "GIF esclusa",
        "GIF não revelada", "GIF omitido", "Παράληψη GIF", "GIF-анімацію пропущено",
        "GIF weggelassen", "لم يتم إدراج صورة GIF", "জিআইএফ বাদ দেওয়া হয়েছে", "GIF 已略去",
        "GIF 圖片已被省略", "GIF 动态图已被忽略", "Đã bỏ qua ảnh GIF", "GIF  نظرانداز",
        "GIF dahil edilmedi", "ละเว้น GIF", "GIF utesluten", "GIF vynechaný", "Plik GIF pominięty",
        "GIF omis", "GIF weggelaten", "GIF utelatt", "GIF tidak dimasukkan", "GIF वगळले",
        "GIF 생략됨", "GIFは含まれていません", "GIF fájl kihagyása", "GIF tidak disertakan",
        "GIF izostavljen", "GIF छोड़ा गया", "GIF પડતી મૂકાઈ", "GIF ligthe ar lár",
        "GIF-animaatio jätetty pois", "GIF حذف شد", "GIF udeladt", "GIF vynechán", "GIF omès",
    ),
    "document": (
        "document omitted", "מסמך הושמט", "документ отсутствует", "document manquant",
        "documento omesso", "documento não revelado", "documento omitido", "έγγραφο παραλείφθηκε",
        "документ пропущено", "Dokument weggelassen", "لم يتم إدراج المستند", "ডকুমেন্ট বাদ দেওয়া হয়েছে",
        "文件已略去", "文件已忽略", "文档已省略", "đã bỏ qua tài liệu", "دستاویز نظرانداز",
        "belge dahil edilmedi", "ละเว้นเอกสาร", "dokument uteslutet", "dokument vynechaný",
        "dokument pominięty", "document omis", "document weggelaten", "utelatt dokument",
        "dokumen tidak dimasukkan", "डॉक्युमेंट वगळले", "문서 생략됨", "ドキュメントは含まれていません",
        "dokumentum kihagyva", "dokumen tidak disertakan", "dokument izostavljen", "डॉक्यूमेंट छोड़ा गया",
        "ડોક્યુમેન્ટ સામેલ કર્યું નહિ", "cáipéis ligthe ar lár", "dokumenttia ei sisällytetä", "سند حذف شد",
        "dokument udeladt", "dokument vynechán", "Document omès",
    ),
    "contact card": (
        "Contact card omitted", "כרטיס איש קשר הושמט", "Карточка контакта отсутствует",
        "Fiche contact manquante", "Scheda contatto omessa", "Contacto não revelado",
        "Tarjeta de contacto omitida", "Η κάρτα επαφής παραλήφθηκε", "Картка контакту відсутня",
        "Kontaktkarte ausgelassen", "لم يتم إدراج بطاقة جهة اتصال", "পরিচিতির কার্ড বাদ দেওয়া হয়েছে",
        "聯絡人卡片已略去", "聯絡人卡片已省略", "联系人卡片已忽略", "Bỏ qua thẻ liên lạc",
        "رابطہ کارڈ نظر انداز", "Kişi kartı dahil edilmedi", "บัตรรายชื่อที่ละเว้น", "Kontaktkort uteslutet",
        "Karta kontaktu vynechaná", "Pominięta wizytówka kontaktu", "Carte de vizită contact omisă",
        "Cartão do contato omitido", "Visitekaartje weggelaten", "Kontaktkort sløyfet",
        "Kad kenalan tidak dimasukkan", "संपर्क कार्ड वगळले", "연락처 카드 생략됨", "連絡先カードを省略",
        "Névjegykártya kihagyva", "Kartu kontak tidak disertakan", "Posjetnica izostavljena",
        "कॉन्टैक्ट कार्ड छोड़ा गया", "સંપર્કનું કાર્ડ પડતું મૂકાયું", "Cárta teagmhála ar lár",
        "Yhteystietokortti jätettiin pois", "برگ مخاطب حذف شد", "Kontaktkort udeladt",
        "Vizitka vynechána", "Targeta de contacte omesa",
    ),
}

#: Android, exported without media: the body (inside ``<…>``) of a message whose media was left out.
ANDROID_MEDIA_OMITTED: tuple[str, ...] = (
    "Media omitted", "Conținut media omis", "మాధ్యమం విస్మరించబడింది", "Файл пропущен",
    "Без медиафайлов", "Walang kalakip na media", "忽略多媒體檔", "Media omesso", "Mitjans omesos",
    "Média vynechána", "Média vynechány", "省略多媒体文件", "Media tidak disertakan",
    "メディアは含まれていません", "Εξαίρεση πολυμέσων", "Bez multivides", "Mediefil udeladt",
    "मीडिया वगळले", "Файл қосылған жоқ", "મીડિયા અવગણાયું", "מדיה הושמטה", "Media disingkirkan",
    "Mídia omitida", "मीडिया के बिना", "Fayl o‘tkazib yuborildi", "pliki pominięto", "Bỏ qua Media",
    "Pa media", "Media har utelämnats", "Medij izpuščen", "Médiá vynechané", "میڈیا چھوڑ دیا گیا",
    "Media imerukwa", "Medya atlanmış", "ஊடகங்கள் நீக்கப்பட்டது", "สื่อถูกลบ",
    "پيوست نما/آهنگ حذف شد", "Praleistas medijos turinys", "Uten vedlegg", "Media jätetty pois",
    "Fichier omis", "Archivo omitido", "Meedia ära jäetud", "Medijski zapis izostavljen",
    "Hiányzó médiafájl", "Media weggelaten", "Без файл", "মিডিয়া বাদ দেওয়া হয়েছে", "Media weggelaat",
    "Medien weggelassen", "Media çıxarılmışdır", "미디어 파일을 생략한 대화내용", "മീഡിയ ഒഴിവാക്കി",
    "Без фајл", "ಮೀಡಿಯಾ ಕೈಬಿಡಲಾಗಿದೆ", "تم استبعاد الوسائط", "Ficheiro não revelado", "Медіа пропущено",
    "медији су изостављени", "ਮੀਡੀਆ ਛੱਡਿਆ ਗਿਆ",
    # Seen in real exports (see the module docstring).
    "Medien ausgeschlossen", "Multimedia omitido", "Médias omis", "Mídia oculta", "Media omessi",
    "Medya dahil edilmedi",
)

#: Both platforms: the body of a message shown as deleted ("This message was deleted",
#: "You deleted this message"). iOS adds a final period; Android does not.
DELETED: tuple[str, ...] = (
    "This message was deleted", "You deleted this message",
    "הודעה זו נמחקה", "מחקת את ההודעה הזו", "מחקת הודעה זו",
    "Данное сообщение удалено", "Вы удалили это сообщение", "Вы удалили данное сообщение",
    "Ce message a été supprimé", "Vous avez supprimé ce message",
    "Questo messaggio è stato eliminato", "Hai eliminato questo messaggio",
    "Esta mensagem foi apagada", "Apagou esta mensagem", "Mensagem apagada", "Você apagou esta mensagem",
    "Esta mensagem foi apagada pelo remetente",
    "Se eliminó este mensaje", "Este mensaje fue eliminado", "Eliminaste este mensaje",
    "Αυτό το μήνυμα διαγράφηκε", "Διαγράψατε αυτό το μήνυμα", "Διαγράψατε το μήνυμα",
    "Це повідомлення було видалено", "Ви видалили це повідомлення",
    "Diese Nachricht wurde gelöscht", "Du hast diese Nachricht gelöscht",
    "تم حذف هذه الرسالة", "لقد حذَفت هذه الرسالة", "أنت حذفت هذه الرسالة",
    "এই মেসেজটি বাদ দেওয়া হয়েছে।", "আপনি এই মেসেজটি বাদ দিয়েছেন", "আপনি এই মেসেজটি বাদ দিয়েছেন।",
    "এই বার্তাটি মুছে ফেলা হয়েছে", "আপনি এই বার্তাটি মুছে ফেলেছেন",
    "此訊息已刪除。", "您已刪除此訊息", "您已刪除此訊息。", "这条消息已被删除。", "您已删除这条消息",
    "您已删除这条消息。", "信息已删除", "您删除这个信息",
    "Tin nhắn này đã bị xóa", "Tin nhắn này đã bị xoá", "Bạn đã xóa tin nhắn này", "Bạn đã xoá tin nhắn này",
    "یہ میسج حذف کر دیا گیا ہے۔", "آپ نے یہ میسج حذف کر دیا ہے", "آپ نے یہ میسج حذف کر دیا ہے۔",
    "یہ پیغام حذف کیا گیا", "آپ نے اس پیغام کو حذف کیا",
    "Bu mesaj silindi", "Bu mesajı sildiniz",
    "ข้อความนี้ถูกลบแล้ว", "ข้อความนี้ได้ถูกลบ", "คุณได้ลบข้อความนี้", "คุณลบข้อความนี้",
    "Det här meddelandet raderades", "Detta meddelande raderades", "Du har tagit bort meddelandet",
    "Du raderade det här meddelandet", "Du raderade detta meddelande",
    "Táto správa bola odstránená", "Túto správu ste odstránili",
    "Ta wiadomość została usunięta", "Usunąłeś(-ęłaś) tę wiadomość", "Usunąłeś(aś) tę wiadomość",
    "Acest mesaj a fost șters", "Ați șters acest mesaj",
    "Dit bericht is verwijderd", "U hebt dit bericht verwijderd",
    "Denne meldingen ble slettet", "Du slettet denne meldingen",
    "Mesej ini telah dipadam", "Anda telah memadamkan mesej ini",
    "हा मेसेज हटवण्यात आला", "तुम्ही हा मेसेज हटवला", "हा संदेश हटविण्यात आला होता", "आपण हा संदेश हटविलात",
    "이 메시지는 삭제되었습니다", "삭제한 메시지입니다", "이 메시지를 삭제했습니다",
    "このメッセージは削除されました。", "このメッセージは削除されました", "このメッセージを削除しました",
    "このメッセージを削除しました。",
    "Ez az üzenet törlésre került", "Ezt az üzenetet törölted", "Törölted ezt az üzenetet",
    "Pesan ini dihapus", "Pesan ini telah dihapus", "Anda menghapus pesan ini", "Anda telah menghapus pesan ini",
    "Ova je poruka izbrisana", "Ova poruka je izbrisana", "Izbrisali ste ovu poruku",
    "यह मैसेज डिलीट कर दिया गया है", "आपने यह मैसेज डिलीट किया", "यह संदेश मिटाया गया", "आपने यह संदेश मिटाया",
    "આ મેસેજ ડિલીટ કરાયો", "તમે આ મેસેજ ડિલીટ કર્યો", "આ સંદેશ રદ્દ કરાયો", "તમે આ સંદેશને રદ્દ કર્યો",
    "Scriosadh an teachtaireacht seo", "Scrios tú an teachtaireacht seo",
    "Tämä viesti poistettiin", "Poistit tämän viestin",
    "این پیام حذف شده است", "این پیام حذف شد", "شما این پیام را حذف کردید",
    "Denne besked er blevet slettet", "Denne besked blev slettet", "Du har slettet denne besked",
    "Du slettede denne besked",
    "Tato zpráva byla smazána", "Tato zpráva byla odstraněna", "Tuto zprávu jste smazal/a",
    "Tuto zprávu jste odstranil/a",
    "Aquest missatge s'ha suprimit", "Aquest missatge està esborrat", "Has suprimit aquest missatge",
    "Has esborrat aquest missatge",
    "Itong mensahe ay binura na", "Binura mo itong mensahe",
    "Šī ziņa tika izdzēsta", "Jūs izdzēsāt šo ziņu",
    "Бұл хат жойылды", "Сіз бұл хатты жойдыңыз",
    "Ushbu xabar o‘chirildi", "Siz ushbu xabarni o‘chirdingiz",
    "To sporočilo je bilo izbrisano", "To sporočilo ste izbrisali",
    "Ujumbe huu ulifutwa", "Umefuta ujumbe huu",
    "Ši žinutė buvo ištrinta", "Jūs ištrynėte šią žinutę",
    "See sõnum on kustutatud", "Kustutasid selle sõnumi",
    "Съобщението беше изтрито", "Изтрихте това съобщение",
    "Hierdie boodskap was uitgevee", "Jy het boodskap uitgevee",
    "Bu ismarıc silindi", "Siz bu ismarıcı sildiniz",
    "Оваа порака беше избришана", "Ја избриша оваа порака",
    "Ова порука је обрисана", "Обрисао/ла си ову поруку",
)

#: iOS ``<attached: NAME>``: the word in each language (the name follows ": ").
ATTACHED_WORDS: tuple[str, ...] = (
    "attached", "المُرفق", "pièce jointe", "прикреплено", "پیوستہ", "allegato", "anexo", "adjunto",
    "επισυνάφθηκε", "додано", "Anhang", "附件", "đính kèm", "eklendi", "bifogat", "príloha", "załączono",
    "atașare", "anexado", "bijgevoegd", "vedlagt", "dilampir", "संलग्न केले", "첨부됨", "添付ファイル",
    "csatolva", "terlampir", "priloženo", "अटैच किया गया", "જોડાયેલ", "ceangailte", "liite", "پیوست",
    "vedhæftet", "příloha", "adjunt", "แนบ", "מצורף", "angehängt",
)

#: Android ``NAME (file attached)``: the words inside the parentheses in each language.
FILE_ATTACHED_WORDS: tuple[str, ...] = (
    "file attached", "fișier atașat", "файл добавлен", "nakalakip na file", "附件檔案", "file allegato",
    "arxiu adjunt", "soubor byl přiložen", "文件附件", "file terlampir", "添付ファイル有り",
    "συνημμένο αρχείο", "pievienots fails", "fil vedhæftet", "फाइल संलग्न", "қосымша файл",
    "ફાઇલ જોડાયેલ", "קובץ מצורף", "fail dilampirkan", "arquivo anexado", "फाइल अटैच कर दी गई है",
    "fayl biriktirildi", "załączony plik", "tệp đính kèm", "skedë e ngjitur", "bifogad fil",
    "priložena datoteka", "súbor pripojený", "پیوستہ فائل", "faili limeambatanishwa", "dosya ekli",
    "ไฟล์ที่แนบ", "byla prisegta", "vedlagt fil", "liitetiedosto", "fichier joint", "archivo adjuntado",
    "archivo adjunto", "fail lisatud", "datoteka u privitku", "fájl csatolva", "bestand bijgevoegd",
    "прикачен файл", "ফাইল সংযুক্ত হয়েছে", "lêer aangeheg", "Datei angehängt", "fayl əlavə olunub",
    "파일 첨부됨", "ഫയൽ ചേർത്തു", "прикачен фајл", "ಕಡತ ಸೇರಿಸಲಾಯಿತು", "الملف مرفق", "ficheiro anexado",
    "файл додано", "прикачена датотека", "ਅਟੈਚ ਕੀਤੀ ਫਾਇਲ",
)

#: Both platforms: the marker after the text of an edited message, without its ``<…>``
#: (a final period, case and marks vary between versions and are folded before lookup).
EDITED: tuple[str, ...] = (
    "This message was edited", "Diese Nachricht wurde bearbeitet", "Ce message a été modifié",
    "Se editó este mensaje", "Mensagem editada", "Questo messaggio è stato modificato",
    "Dit bericht is bewerkt", "Bu mesaj düzenlendi", "Сообщение изменено", "Pesan ini telah diedit",
)

#: The word before ``: https://maps.google.com/?q=…`` of a shared location, by language.
LOCATION_WORDS: tuple[str, ...] = (
    "location", "locație", "స్థలం", "местоположение", "lokasyon", "位置", "posizione", "ubicació", "poloha",
    "位", "lokasi", "位置情報", "τοποθεσία", "atrašanās vieta", "placering", "स्थान", "орналасуы", "સ્થળ",
    "מיקום", "localização", "joylashuv", "położenie", "vị trí", "Vendndodhja", "plats", "lokacija", "مقام",
    "Mahali", "konum", "இருப்பிடம்", "ตำแหน่งที่ตั้ง", "موقعیت", "buvimo vieta", "posisjon", "sijainti",
    "localisation", "ubicación", "asukoht", "Helyzet", "locatie", "অবস্থান", "ligging", "Standort", "məkan",
    "위치", "സ്ഥലം", "локација", "ಸ್ಥಳ", "الموقع", "місцезнаходження", "ਟਿਕਾਣਾ",
)

#: The body of a live location shared (Android; iOS marks it), by language.
LIVE_LOCATION: tuple[str, ...] = (
    "live location shared", "locație în timp real distribuită", "ప్రత్యక్ష స్థాన భాగస్వామ్యం",
    "Геоданные отправлены", "ibinahagi ang live na lokasyon", "實時位置已分享", "posizione attuale condivisa",
    "Ubicació en directe compartida", "byla sdílena aktuální poloha", "共享实时位置", "Lokasi terkini dibagikan",
    "ライブロケーション共有", "η τωρινή τοποθεσία κοινοποιήθηκε", "reāllaika atrašanās vieta",
    "live placering delt", "सध्याचे थेट ठिकाण शेअर केले", "қазіргі орынмен бөлісті", "જીવંત સ્થાન શેર કરાયું",
    "משתף מיקום בשידור חי", "lokasi terkini dikongsi", "localização atual compartilhada",
    "लाइव स्थान साझा किया गया", "jonli joylashuv ulashildi", "udostępniona transmisja położenia",
    "vị trí hiện thời được chia sẻ", "vendnodhja aktuale u shpërnda", "liveposition delad",
    "lokacija v živo je bila deljena", "bola zdieľaná aktuálna poloha", "جاری مقام کا اشتراک ہوا",
    "mahali mubashara pameshirikishwa", "Mevcut konum paylaşıldı", "இடம் நேரலையாக பகிரபட்டது",
    "ตำแหน่งปัจจุบันถูกแบ่งปัน", "مکان زنده به اشتراک گذاشته شد", "tiesioginė vieta bendrinama",
    "posisjon i sanntid delt", "live-sijainti jaettu", "Localisation en direct partagée",
    "ubicación en tiempo real compartida", "hetke asukoht jagatud", "trenutna lokacija podijeljena",
    "tartózkodási hely megosztva", "live locatie gedeeld", "местоположение в реално време споделено",
    "লাইভ অবস্থান শেয়ার করা হয়েছে", "regstreekse ligging gedeel", "Live-Standort wird geteilt",
    "canlı məkan paylaşılıb", "공유한 실시간 위치", "ലൈവ് ലൊക്കേഷൻ പങ്കിട്ടു", "споделено локација во живо",
    "ನೇರ ಸ್ಥಳ ಹಂಚಿಕೊಳ್ಳಲಾಗಿದೆ", "تمت مشاركة الموقع المباشر", "Está a partilhar a sua localização",
    "геодані надіслано", "Локација уживо подељена", "ਮੌਜੂਦਾ ਟਿਕਾਣਾ ਸਾਂਝਾ ਕੀਤਾ",
)

#: The word before ``: QUESTION`` of a poll (iOS marks it; its options follow on later lines).
POLL_WORDS: tuple[str, ...] = ("POLL", "SONDAGGIO", "ANKET")

#: The body iOS writes in place of view-once media (it is never exported).
VIEW_ONCE: tuple[str, ...] = (
    "You received a view once message. For added privacy, you can only open it on your phone.",
    "Recibiste un mensaje de visualización única. Para mayor privacidad, solo puedes abrirlo en tu teléfono.",
)

#: The body of a message whose content never reached the exporting phone.
WAITING: tuple[str, ...] = ("Waiting for this message. This may take a while.",)
