import SlicerUI

extension AppView {
    /// Theme, large type and the right panel's tab by name, for scripted
    /// screenshots (`cnnslicer screenshot --select theme=light,large=1,tab=car`).
    /// Returns false for an unknown name.
    public func applyPresentation(theme: String?, largeType: Bool?, tab: String?, ui: UIContext) -> Bool {
        if let theme {
            guard let index = Theme.all.firstIndex(where: { $0.name == theme }) else { return false }
            themeIndex = index
            ui.theme = Theme.all[index]
        }
        if let largeType { self.largeType = largeType }
        applyLargeType(ui)
        if let tab {
            // car-curve and car-results open the CAR panel's other parts.
            let tabs = ["matrix": (0, 0), "car": (1, 0), "car-curve": (1, 1), "car-results": (1, 2), "scatter": (2, 0)]
            guard let (index, section) = tabs[tab] else { return false }
            rightTab = index
            if index == 1 { carPanel.section = section }
        }
        return true
    }
}
