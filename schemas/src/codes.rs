//! Every code list of the feeds and the warehouse, each code with its Chinese label.
//!
//! Feeds may send either the code or the label (`labor` or `劳动争议`); [`CodeList::parse`]
//! accepts both and returns the code, which is what the warehouse stores.

/// One code list: the name it is known by, and `(code, Chinese label)` pairs.
#[derive(Debug, Clone, Copy)]
pub struct CodeList {
    pub name: &'static str,
    pub doc: &'static str,
    pub codes: &'static [(&'static str, &'static str)],
}

impl CodeList {
    /// The code for `text`, given as a code (any case) or as its Chinese label.
    pub fn parse(&self, text: &str) -> Option<&'static str> {
        let t = text.trim();
        // The code as it is written is by far the most common: looked for first, alone.
        if let Some((code, _)) = self.codes.iter().find(|(code, _)| *code == t) {
            return Some(code);
        }
        self.codes
            .iter()
            .find(|(code, label)| code.eq_ignore_ascii_case(t) || *label == t)
            .map(|(code, _)| *code)
    }

    /// The Chinese label of a code.
    pub fn label(&self, code: &str) -> Option<&'static str> {
        self.codes.iter().find(|(c, _)| *c == code).map(|(_, l)| *l)
    }

    pub fn contains(&self, code: &str) -> bool {
        self.codes.iter().any(|(c, _)| *c == code)
    }
}

pub const LINES: CodeList = CodeList {
    name: "line",
    doc: "Hotline number a call came in on; 12345 = routed from the merged government hotline",
    codes: &[
        ("12348", "12348法律服务热线"),
        ("12345", "12345政务服务热线"),
    ],
};

pub const TOPICS: CodeList = CodeList {
    name: "topic",
    doc: "Consultation category of a hotline call",
    codes: &[
        ("labor", "劳动争议"),
        ("marriage_family", "婚姻家庭"),
        ("land", "土地纠纷"),
        ("contract", "合同纠纷"),
        ("debt", "债权债务"),
        ("traffic", "交通事故"),
        ("criminal", "刑事"),
        ("administrative", "行政"),
        ("other", "其他"),
    ],
};

pub const RATINGS: CodeList = CodeList {
    name: "rating",
    doc: "Caller or applicant rating, 1-5",
    codes: &[
        ("5", "非常满意"),
        ("4", "满意"),
        ("3", "基本满意"),
        ("2", "不满意"),
        ("1", "非常不满意"),
    ],
};

pub const CASE_TYPES: CodeList = CodeList {
    name: "case_type",
    doc: "Type of a case in the case-management exports",
    codes: &[
        ("mediation", "人民调解"),
        ("notarization", "公证"),
        ("legal_aid", "法律援助"),
        ("judicial_appraisal", "司法鉴定"),
    ],
};

pub const OUTCOMES: CodeList = CodeList {
    name: "outcome",
    doc: "Outcome of a mediation case",
    codes: &[("success", "调解成功"), ("failed", "调解不成功")],
};

pub const WORK_ORDER_STATUSES: CodeList = CodeList {
    name: "status",
    doc: "Status of a work-order version",
    codes: &[
        ("submitted", "已提交"),
        ("accepted", "已受理"),
        ("transferred", "已转办"),
        ("closed", "已办结"),
        ("cancelled", "已撤销"),
    ],
};

pub const CHANNELS: CodeList = CodeList {
    name: "channel",
    doc: "Channel a work order came through",
    codes: &[
        ("onsite", "实体"),
        ("hotline", "热线"),
        ("online", "网络"),
        ("app", "移动端"),
    ],
};

pub const PLATFORM_LEVELS: CodeList = CodeList {
    name: "platform_level",
    doc: "Level of the platform handling a work order",
    codes: &[
        ("province", "省级"),
        ("city", "市级"),
        ("county", "县级"),
        ("township", "乡镇级"),
        ("village", "村级"),
    ],
};

pub const LEVELS: CodeList = CodeList {
    name: "level",
    doc: "Level of a physical platform (service center, workstation, workroom)",
    codes: &[
        ("city", "市级公共法律服务中心"),
        ("county", "县级公共法律服务中心"),
        ("township", "乡镇公共法律服务工作站"),
        ("village", "村(居)公共法律服务工作室"),
    ],
};

pub const SERVICE_TYPES: CodeList = CodeList {
    name: "service_type",
    doc: "Service a work order asks for",
    codes: &[
        ("consultation", "法律咨询"),
        ("mediation", "人民调解"),
        ("notarization", "公证"),
        ("legal_aid", "法律援助"),
        ("judicial_appraisal", "司法鉴定"),
        ("arbitration", "仲裁"),
        ("lawyer", "律师服务"),
        ("other", "其他"),
    ],
};

pub const PLATFORM_SERVICES: CodeList = CodeList {
    name: "services",
    doc: "Services settled in a platform",
    codes: &[
        ("notarization", "公证"),
        ("judicial_appraisal", "司法鉴定"),
        ("legal_exam", "法律职业资格考试"),
        ("legal_aid", "法律援助"),
        ("mediation", "人民调解"),
        ("lawyer", "律师服务"),
    ],
};

pub const EQUIPMENT: CodeList = CodeList {
    name: "equipment",
    doc: "Equipment of a platform",
    codes: &[
        ("cctv", "视频监控"),
        ("id_reader", "身份证读卡器"),
        ("doc_camera", "高拍仪"),
        ("rating_device", "服务评价器"),
    ],
};

pub const ROLES: CodeList = CodeList {
    name: "role",
    doc: "Role of a staff member",
    codes: &[
        ("platform_staff", "平台工作人员"),
        ("mediator", "人民调解员"),
        ("village_legal_adviser", "村(居)法律顾问"),
        ("judicial_office_staff", "司法所工作人员"),
        ("lawyer", "律师"),
        ("notary", "公证员"),
    ],
};

pub const FUNDING_SOURCES: CodeList = CodeList {
    name: "source",
    doc: "Where a funding amount comes from",
    codes: &[
        ("central_transfer", "中央转移支付"),
        ("provincial_transfer", "省级转移支付"),
        ("county_budget", "县级财政预算"),
        ("other", "其他"),
    ],
};

pub const PROGRAMS: CodeList = CodeList {
    name: "program",
    doc: "What a funding amount is for",
    codes: &[
        ("mediation", "人民调解"),
        ("village_legal_adviser", "村(居)法律顾问"),
        ("judicial_office", "司法所"),
        ("legal_aid", "法律援助"),
        ("platform", "平台建设"),
        ("other", "其他"),
    ],
};

pub const FEEDS: CodeList = CodeList {
    name: "feed",
    doc: "An upstream feed of the warehouse",
    codes: &[
        ("hotline", "12348热线通话记录"),
        ("work_orders", "网络平台工单"),
        ("cases", "案件"),
        ("platforms", "平台台账"),
        ("staff", "人员台账"),
        ("funding", "经费"),
        ("population", "人口"),
    ],
};

/// Every code list, for documentation and the catalog.
pub const ALL: &[CodeList] = &[
    LINES,
    TOPICS,
    RATINGS,
    CASE_TYPES,
    OUTCOMES,
    WORK_ORDER_STATUSES,
    CHANNELS,
    PLATFORM_LEVELS,
    LEVELS,
    SERVICE_TYPES,
    PLATFORM_SERVICES,
    EQUIPMENT,
    ROLES,
    FUNDING_SOURCES,
    PROGRAMS,
    FEEDS,
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_code_or_label() {
        assert_eq!(TOPICS.parse("劳动争议"), Some("labor"));
        assert_eq!(TOPICS.parse(" LABOR "), Some("labor"));
        assert_eq!(TOPICS.parse("赡养"), None);
        assert_eq!(CASE_TYPES.parse("公证"), Some("notarization"));
        assert_eq!(CASE_TYPES.label("legal_aid"), Some("法律援助"));
    }

    #[test]
    fn codes_and_labels_are_unique_per_list() {
        for list in ALL {
            let mut seen = std::collections::HashSet::new();
            for (code, label) in list.codes {
                assert!(seen.insert(*code), "{}: duplicate code {code}", list.name);
                assert!(
                    seen.insert(*label),
                    "{}: duplicate label {label}",
                    list.name
                );
            }
        }
    }
}
