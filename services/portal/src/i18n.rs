//! The portal's languages: English, French and Arabic (right to left), with message
//! catalogues in `locales/*.json` compiled into the binary. A visitor's language is their
//! explicit choice, else their registered `lang_code`, else the browser's
//! `Accept-Language`, else the configured default.

use std::collections::HashMap;

/// A language of the portal, named by MOSIP's ISO 639-3 `lang_code`.
#[derive(
    Debug, Clone, Copy, PartialEq, Eq, Hash, Default, serde::Serialize, serde::Deserialize,
)]
pub enum Language {
    /// `eng`.
    #[default]
    English,
    /// `fra`.
    French,
    /// `ara`, written right to left.
    Arabic,
}

impl Language {
    /// Every language, in the order the switcher shows them.
    pub const ALL: [Language; 3] = [Language::English, Language::French, Language::Arabic];

    /// From a `lang_code` (`eng`, `fra`, `ara`, any case).
    pub fn from_code(code: &str) -> Option<Language> {
        match code.trim().to_ascii_lowercase().as_str() {
            "eng" => Some(Language::English),
            "fra" => Some(Language::French),
            "ara" => Some(Language::Arabic),
            _ => None,
        }
    }

    /// The `lang_code` (`eng`, `fra`, `ara`).
    pub fn code(self) -> &'static str {
        match self {
            Language::English => "eng",
            Language::French => "fra",
            Language::Arabic => "ara",
        }
    }

    /// The BCP 47 tag for `<html lang>`.
    pub fn tag(self) -> &'static str {
        match self {
            Language::English => "en",
            Language::French => "fr",
            Language::Arabic => "ar",
        }
    }

    /// `rtl` for Arabic, `ltr` otherwise (`<html dir>`).
    pub fn direction(self) -> &'static str {
        match self {
            Language::Arabic => "rtl",
            Language::English | Language::French => "ltr",
        }
    }

    /// The language's own name, for the switcher.
    pub fn own_name(self) -> &'static str {
        match self {
            Language::English => "English",
            Language::French => "Français",
            Language::Arabic => "العربية",
        }
    }

    /// The preferred supported language of an `Accept-Language` header, if any.
    pub fn from_accept_language(header: &str) -> Option<Language> {
        let mut best: Option<(Language, f32)> = None;
        for entry in header.split(',') {
            let mut parts = entry.split(';');
            let tag = parts.next().unwrap_or_default().trim().to_ascii_lowercase();
            let quality = parts
                .find_map(|parameter| parameter.trim().strip_prefix("q="))
                .and_then(|value| value.trim().parse::<f32>().ok())
                .unwrap_or(1.0);
            let primary = tag.split('-').next().unwrap_or_default();
            let language = match primary {
                "en" | "eng" => Language::English,
                "fr" | "fra" => Language::French,
                "ar" | "ara" => Language::Arabic,
                _ => continue,
            };
            if quality > 0.0 && best.is_none_or(|(_, current)| quality > current) {
                best = Some((language, quality));
            }
        }
        best.map(|(language, _)| language)
    }

    fn index(self) -> usize {
        match self {
            Language::English => 0,
            Language::French => 1,
            Language::Arabic => 2,
        }
    }
}

/// The message catalogues of every language.
#[derive(Debug)]
pub struct Catalogs {
    messages: [HashMap<String, String>; 3],
}

impl Catalogs {
    /// Parses the compiled-in catalogues.
    pub fn load() -> anyhow::Result<Catalogs> {
        let parse = |name: &str, text: &str| -> anyhow::Result<HashMap<String, String>> {
            serde_json::from_str(text)
                .map_err(|error| anyhow::anyhow!("locales/{name}.json does not parse: {error}"))
        };
        Ok(Catalogs {
            messages: [
                parse("eng", include_str!("../locales/eng.json"))?,
                parse("fra", include_str!("../locales/fra.json"))?,
                parse("ara", include_str!("../locales/ara.json"))?,
            ],
        })
    }

    /// The texts of `language`.
    pub fn texts(&self, language: Language) -> Texts<'_> {
        Texts {
            language,
            catalogs: self,
        }
    }

    fn lookup(&self, language: Language, key: &str) -> Option<&str> {
        self.messages[language.index()].get(key).map(String::as_str)
    }
}

/// The messages of one language; a key missing there falls back to English (a test keeps
/// every catalogue complete), then to the key itself.
#[derive(Debug, Clone, Copy)]
pub struct Texts<'a> {
    /// The language of the page.
    pub language: Language,
    catalogs: &'a Catalogs,
}

impl<'a> Texts<'a> {
    /// The message `key`.
    pub fn get<'k>(&self, key: &'k str) -> &'k str
    where
        'a: 'k,
    {
        self.catalogs
            .lookup(self.language, key)
            .or_else(|| self.catalogs.lookup(Language::English, key))
            .unwrap_or(key)
    }

    /// Whether the catalogue has `key` (e.g. a message for an error reason).
    pub fn has(&self, key: &str) -> bool {
        self.catalogs.lookup(self.language, key).is_some()
    }

    /// The message `key` with `{name}` placeholders replaced.
    pub fn format(&self, key: &str, arguments: &[(&str, &str)]) -> String {
        arguments
            .iter()
            .fold(self.get(key).to_owned(), |text, (name, value)| {
                text.replace(&format!("{{{name}}}"), value)
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_catalogue_has_every_key_of_the_others() {
        let catalogs = Catalogs::load().expect("catalogues parse");
        for language in Language::ALL {
            for other in Language::ALL {
                for key in catalogs.messages[other.index()].keys() {
                    assert!(
                        catalogs.lookup(language, key).is_some(),
                        "{} lacks {key:?} (present in {})",
                        language.code(),
                        other.code()
                    );
                }
            }
        }
    }

    #[test]
    fn placeholders_match_across_languages() {
        let catalogs = Catalogs::load().expect("catalogues parse");
        let placeholders = |text: &str| {
            let mut names: Vec<String> = text
                .split('{')
                .skip(1)
                .filter_map(|part| part.split_once('}').map(|(name, _)| name.to_owned()))
                .collect();
            names.sort();
            names
        };
        for (key, english) in &catalogs.messages[0] {
            for language in [Language::French, Language::Arabic] {
                let text = catalogs.lookup(language, key).unwrap_or_default();
                assert_eq!(
                    placeholders(text),
                    placeholders(english),
                    "{key} in {}",
                    language.code()
                );
            }
        }
    }

    /// Every reason of the contract's error table (`api.md`), and the platform's own.
    const CONTRACT_REASONS: &[&str] = &[
        "PMS_COR_001",
        "PMS_PRT_012",
        "PMS_PRT_013",
        "PMS_PRT_066",
        "PMS_PRT_052",
        "PMS_PRT_010",
        "PMS_PRT_014",
        "PMS_PRT_051",
        "PMS_PRT_011",
        "KER-ATH-401",
        "KER-ATH-403",
        "PMS_PRT_005",
        "PMS_PMP_016",
        "KER-PCM-001",
        "KER-KMS-013",
        "KER-PCM-011",
        "KER-PCM-003",
        "KER-PMS-020",
        "KER-PCM-004",
        "KER-PCM-017",
        "KER-KMS-021",
        "KER-PCM-005",
        "KER-PCM-015",
        "KER-PCM-006",
        "KER-PCM-007",
        "KER-PCM-019",
        "PMS_PRT_056",
        "KER-PCM-008",
        "KER-PCM-013",
        "KER-PCM-014",
        "KER-PCM-012",
        "PMP_AUT_031",
        "PMP_AUT_030",
        "PMP_AUT_032",
        "PMP_AUT_033",
        "PMP_AUT_038",
        "PMP_AUT_039",
        "PMS_FTM_ERROR_012",
        "PMS_FTM_ERROR_010",
        "PMS_FTM_ERROR_007",
        "PMS_PRT_357",
        "PMS_PRT_361",
        "PMS_PRT_362",
        "KER-PMS-019",
        "KER-ATH-429",
        "PMS_RESOURCE_EXHAUSTED",
        "PMS_UNAVAILABLE",
        "PMS_INTERNAL",
    ];

    #[test]
    fn every_contract_reason_has_a_message_in_every_language() {
        let catalogs = Catalogs::load().expect("catalogues parse");
        for language in Language::ALL {
            for reason in CONTRACT_REASONS {
                let key = format!("reason.{reason}");
                assert!(
                    catalogs.lookup(language, &key).is_some(),
                    "{} has no message for {reason}",
                    language.code()
                );
            }
        }
    }

    #[test]
    fn accept_language_picks_the_best_supported() {
        assert_eq!(
            Language::from_accept_language("de-DE,fr;q=0.8,en;q=0.5"),
            Some(Language::French)
        );
        assert_eq!(
            Language::from_accept_language("ar-EG"),
            Some(Language::Arabic)
        );
        assert_eq!(Language::from_accept_language("de, es;q=0.3"), None);
        assert_eq!(
            Language::from_accept_language("fr;q=0, en-GB"),
            Some(Language::English)
        );
    }

    #[test]
    fn formatting_fills_placeholders() {
        let catalogs = Catalogs::load().expect("catalogues parse");
        let texts = catalogs.texts(Language::English);
        assert!(
            texts
                .format("error.rate_limited", &[("minutes", "42")])
                .contains("42")
        );
    }
}
