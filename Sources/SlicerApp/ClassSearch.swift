import Foundation
import SlicerUI

/// Finding a class by typing part of its name: with ImageNet's 1,000 classes a
/// drop-down list is a long scroll, and "tabby" should be a few keystrokes away.
/// Used by the matrix's class picker and the browser's class filter.
enum ClassSearch {
    /// The classes whose name contains `query`, best first: a name (or one of its
    /// comma-separated alternatives, "tabby, tabby cat") equal to the query, then names
    /// starting with it, then names with a word starting with it, then any other
    /// substring; ties in class order. Case, accents, `_` and `-` are ignored, so
    /// folder-style names ("tiger_shark") match as typed. A number also finds the class
    /// of that index (first). An empty query gives every class in order.
    static func matches(_ query: String, in names: [String]) -> [Int] {
        matches(query, normalizedNames: names.map(normalized))
    }

    /// `matches(_:in:)` over names already passed through `normalized`.
    static func matches(_ query: String, normalizedNames names: [String]) -> [Int] {
        let q = normalized(query)
        guard !q.isEmpty else { return Array(names.indices) }
        var ranked: [(rank: Int, index: Int)] = []
        for (i, n) in names.enumerated() {
            guard let range = n.range(of: q) else { continue }
            let alternatives = n.split(separator: ",").map { $0.trimmingCharacters(in: .whitespaces) }
            let rank: Int
            if alternatives.contains(q) { rank = 0 }
            else if range.lowerBound == n.startIndex { rank = 1 }
            else if n.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "/" || $0 == "(" }).contains(where: { $0.hasPrefix(q) }) { rank = 2 }
            else { rank = 3 }
            ranked.append((rank, i))
        }
        ranked.sort { $0.rank != $1.rank ? $0.rank < $1.rank : $0.index < $1.index }
        var result = ranked.map(\.index)
        if let k = Int(q.trimmingCharacters(in: .whitespaces)), names.indices.contains(k) {
            result.removeAll { $0 == k }
            result.insert(k, at: 0)
        }
        return result
    }

    static func normalized(_ s: String) -> String {
        s.folding(options: [.caseInsensitive, .diacriticInsensitive], locale: nil)
            .replacingOccurrences(of: "_", with: " ").replacingOccurrences(of: "-", with: " ")
            .trimmingCharacters(in: .whitespaces)
    }
}

/// One search field's last answer. The browser and the class picker search on every
/// frame while their field is open; folding 1,000 ImageNet names each frame cost more
/// than drawing the list, so the folded names and the last query's matches are kept
/// until the names or the query change.
struct ClassSearchMemo {
    private var names: [String] = []
    private var normalizedNames: [String] = []
    private var query: String?
    private var result: [Int] = []

    mutating func matches(_ query: String, in names: [String]) -> [Int] {
        if names != self.names {
            self.names = names
            normalizedNames = names.map(ClassSearch.normalized)
            self.query = nil
        }
        if query != self.query {
            result = ClassSearch.matches(query, normalizedNames: normalizedNames)
            self.query = query
        }
        return result
    }
}

extension AppView {
    /// A row of a class list (the browser's matches, the matrix's picker): the class's
    /// name, in the longest form that fits, and a dim detail on the right.
    func drawClassRow(_ ui: UIContext, _ r: Rect, name full: String, detail: String) {
        let pad = ui.scaled(ui.theme.padding)
        let detailWidth = ui.measurer.width(of: detail[...], font: ui.font(.small))
        ui.drawText(detail[...], in: Rect(x: r.maxX - pad - detailWidth, y: r.y, width: detailWidth, height: r.height),
                    style: .small, color: ui.theme.colors.textDim, alignment: .trailing)
        let nameWidth = r.width - detailWidth - 3 * pad
        let alternatives = classNameAlternatives(full)
        let name = ui.firstFitting(alternatives, width: nameWidth, style: .body) ?? alternatives.last ?? full
        ui.drawText(name[...], in: Rect(x: r.x + pad, y: r.y, width: max(0, nameWidth), height: r.height), color: ui.theme.colors.text)
    }
}
